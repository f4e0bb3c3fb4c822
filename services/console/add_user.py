"""Adding one person: name, email and role; membership creates their account and
identity emails them a link to set their password.

An address that already has an account (in another department, or registered by the
person) cannot be added: one account per person, for life. The page says so and
offers to invite that address instead, in one click; a person already in the
department is linked to their record.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import Response

from . import departments
from .clients import Problem
from .deps import Api, SignedIn
from .errors import PageProblem
from .forms import FormErrors, errors_from
from .invitations import INVITATIONS, ROLES
from .record_view import role_name
from .routing import page_router
from .session import Session
from .templating import render

router = page_router()

ADD = "/departments/{dept}/users/new"
LABELS = {"name": "Full name", "email": "Email address", "role": "Role"}


async def _page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    added: dict[str, Any] | None = None,
    pending: str = "",
    exists: str = "",
    member: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    department = await departments.resolve(api, session.token, dept)
    if department.standing != "unknown" and not department.administers:
        # The form would only lead to membership's refusal (which still decides): say it
        # before the person fills it in.
        raise PageProblem(
            Problem(403, "forbidden", "Forbidden", "Only the department's admins may add people.")
        )
    return render(
        request,
        "add_user/index.html",
        {
            "department": department,
            "section": "users/new",
            "base": ADD.format(dept=dept),
            "invitations": INVITATIONS.format(dept=dept),
            "users": f"/departments/{dept}/users",
            "values": {"name": "", "email": "", "role": "member", **(values or {})},
            "errors": errors or FormErrors(),
            "roles": ROLES,
            "role_name": role_name,
            "added": added,
            "pending": pending,
            "exists": exists,
            "member": member,
        },
        status=status,
    )


@router.get(ADD)
async def add_page(request: Request, dept: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """The form that adds one person."""
    return await _page(request, api, session, dept)


@router.post(ADD)
async def add_user(
    request: Request,
    dept: uuid.UUID,
    session: SignedIn,
    api: Api,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "member",
) -> Response:
    """Add the person; or say why not, next to the field or with what to do instead."""
    values = {"name": name, "email": email.strip(), "role": role}
    result = await api.call(
        "membership",
        "POST",
        f"/v1/departments/{dept}/members",
        token=session.token,
        json={"name": name, "email": email.strip(), "role": role},
    )
    if isinstance(result, Problem):
        if result.slug == "account-exists":
            return await _page(
                request, api, session, dept, values=values, exists=email.strip(), status=409
            )
        if result.slug == "already-member":
            found = {"account_id": result.extra.get("account_id"), "email": email.strip()}
            return await _page(request, api, session, dept, values=values, member=found, status=409)
        if result.status == 403 or (result.status == 404 and not result.errors):
            raise PageProblem(result)
        errors = errors_from(result, LABELS)
        return await _page(
            request, api, session, dept, values=values, errors=errors, status=result.status
        )
    if result.status == 202:
        return await _page(request, api, session, dept, pending=name or email, status=202)
    return await _page(request, api, session, dept, added=result.json(), status=201)
