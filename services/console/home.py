"""After signing in: the person's departments (membership lists them), each
department's landing page, and signing out everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Ok, ServiceDown, SignInRequired
from .csrf import renew_sid
from .deps import Api, Config, SignedIn
from .routing import page_router
from .session import end_session
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
    """Every department the person is a member of, by name, and what they can do there;
    an admin of several switches between them here."""
    me, mine = await asyncio.gather(
        _me(api, session.token), departments.memberships(api, session.token)
    )
    return render(request, "home.html", {"me": me, "departments": mine})


@router.get("/departments/{dept}")
async def department_home(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, joined: str | None = None
) -> Response:
    """Admins and officers go to the users table; members see where they stand."""
    view = await departments.resolve(api, session.token, dept)
    if view.manages and joined is None:
        return RedirectResponse(f"/departments/{dept}/users", status_code=303)
    status = 404 if view.standing == "none" else 200
    return render(
        request, "department.html", {"department": view, "joined": joined}, status=status
    )


@router.post("/sign-out-everywhere")
async def sign_out_everywhere(
    request: Request, session: SignedIn, api: Api, settings: Config
) -> Response:
    """Identity revokes every access token of the account (other browsers, other
    devices, a stolen one), then this session ends too. A token already revoked
    (a 401) means it is done; identity not answering is the service-down page, and
    the session stays, so the person can try again."""
    with contextlib.suppress(SignInRequired):
        await api.call("identity", "POST", "/v1/me/sign-out-everywhere", token=session.token)
    response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
    end_session(response, settings)
    renew_sid(request)
    return response
