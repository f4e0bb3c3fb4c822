"""The department's self-registration link: shown with a copy button, with its default
role, expiry and allowed domains; created or rotated (the old link stops working at
once) and switched off.

The link is membership's; only the department's admins may see or change it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Problem
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .invitations import ROLES
from .record_view import day, role_name
from .routing import page_router
from .session import Session
from .templating import render

router = page_router()

LINK = "/departments/{dept}/registration-link"
LABELS = {"role": "Role", "expires_at": "Expires on", "allowed_domains": "Allowed email domains"}
NOTICES = {
    "created": "The link is ready. Copy it and share it where your people will find it.",
    "rotated": "A new link is ready. The old one no longer works.",
    "disabled": "The link is switched off: nobody can join with it. Create a new one any time.",
}


def _api(dept: uuid.UUID) -> str:
    return f"/v1/departments/{dept}/registration-link"


def domains_of(text: str) -> list[str]:
    """Allowed domains as an admin types them: commas, semicolons, spaces or lines;
    an ``@`` in front is forgiven."""
    for separator in ",;\n\r\t":
        text = text.replace(separator, " ")
    return [d.lstrip("@").strip().lower() for d in text.split(" ") if d.strip("@ ")]


def expiry_of(text: str) -> str | None:
    """The end of the chosen day (UTC) as membership takes it, or None for no expiry.
    A date that does not parse is sent as typed: membership names the field."""
    text = text.strip()
    if not text:
        return None
    try:
        chosen = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return text
    return datetime.combine(chosen, time(23, 59, 59), tzinfo=UTC).isoformat()


async def _page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    result, department = await asyncio.gather(
        api.call("membership", "GET", _api(dept), token=session.token),
        departments.resolve(api, session.token, dept),
    )
    link: dict[str, Any] = expect(result).json()
    return render(
        request,
        "registration_link/index.html",
        {
            "department": department,
            "section": "registration-link",
            "base": LINK.format(dept=dept),
            "link": link,
            "values": {
                "role": str(link.get("role") or "member"),
                "expires_at": "",
                "allowed_domains": ", ".join(link.get("allowed_domains") or []),
                **(values or {}),
            },
            "errors": errors or FormErrors(),
            "roles": ROLES,
            "role_name": role_name,
            "day": day,
            "notice": notice,
        },
        status=status,
    )


@router.get(LINK)
async def link_page(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, notice: str = ""
) -> Response:
    """The link, what it does, and the forms that change it."""
    return await _page(request, api, session, dept, notice=NOTICES.get(notice, ""))


@router.post(LINK)
async def new_link(
    request: Request,
    dept: uuid.UUID,
    session: SignedIn,
    api: Api,
    role: Annotated[str, Form()] = "member",
    expires_at: Annotated[str, Form()] = "",
    allowed_domains: Annotated[str, Form()] = "",
    had_link: Annotated[str, Form()] = "",
) -> Response:
    """A new link (the old one, if any, stops working at once)."""
    body = {
        "role": role,
        "expires_at": expiry_of(expires_at),
        "allowed_domains": domains_of(allowed_domains),
    }
    result = await api.call("membership", "POST", _api(dept), token=session.token, json=body)
    if isinstance(result, Problem):
        if result.status in (403, 404) and not result.errors:
            raise PageProblem(result)
        values = {"role": role, "expires_at": expires_at, "allowed_domains": allowed_domains}
        return await _page(
            request,
            api,
            session,
            dept,
            values=values,
            errors=errors_from(result, LABELS),
            status=result.status,
        )
    done = "rotated" if had_link else "created"
    return RedirectResponse(LINK.format(dept=dept) + f"?notice={done}", status_code=303)


@router.post(LINK + "/disable")
async def disable_link(request: Request, dept: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """Switch self-registration off."""
    expect(await api.call("membership", "DELETE", _api(dept), token=session.token))
    return RedirectResponse(LINK.format(dept=dept) + "?notice=disabled", status_code=303)
