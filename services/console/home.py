"""After signing in: the person's departments, and each department's landing page."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Ok, ServiceDown
from .deps import Api, SignedIn
from .forms import FormErrors
from .routing import page_router
from .session import remember_department, remembered_departments
from .templating import render

router = page_router()


async def _me(api: Api, token: str) -> dict[str, str]:
    try:
        result = await api.call("identity", "GET", "/v1/me", token=token)
    except ServiceDown:
        return {}
    return {k: str(v) for k, v in result.json().items()} if isinstance(result, Ok) else {}


@router.get("/")
async def home(request: Request, session: SignedIn, api: Api) -> Response:
    """The person's departments (those opened or joined in this browser) and a way to
    open another by its ID."""
    known = remembered_departments(request, session)
    me, *views = await asyncio.gather(
        _me(api, session.token), *(departments.resolve(api, session.token, d) for d in known)
    )
    return render(
        request,
        "home.html",
        {"me": me, "departments": views, "errors": FormErrors(), "department_id": ""},
    )


@router.get("/departments/open")
async def open_department(
    request: Request, session: SignedIn, api: Api, department: str = ""
) -> Response:
    """Go to a department by its ID (there is no "my departments" call to list them)."""
    try:
        dept = uuid.UUID(department.strip())
    except ValueError:
        errors = FormErrors()
        errors.add(
            "Enter the department ID you were given, like 3f2c9a1e-5b7d-4c8e-9f10-2a3b4c5d6e7f.",
            "department",
        )
        known = remembered_departments(request, session)
        views = await asyncio.gather(*(departments.resolve(api, session.token, d) for d in known))
        me = await _me(api, session.token)
        return render(
            request,
            "home.html",
            {"me": me, "departments": views, "errors": errors, "department_id": department},
            status=422,
        )
    return RedirectResponse(f"/departments/{dept}", status_code=303)


@router.get("/departments/{dept}")
async def department_home(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, joined: str | None = None
) -> Response:
    """Admins and officers go to the users table; members see where they stand."""
    view = await departments.resolve(api, session.token, dept)
    if view.standing == "unknown":
        return render(
            request, "department.html", {"department": view, "joined": joined}, status=404
        )
    response: Response
    if view.manages and joined is None:
        response = RedirectResponse(f"/departments/{dept}/users", status_code=303)
    else:
        response = render(request, "department.html", {"department": view, "joined": joined})
    remember_department(request, response, session, dept)
    return response
