"""Inviting people: a pasted list of addresses with one role, the outcome per address,
and the pending invitations with their reminders and revocation.

Everything is membership's: it parses the paste (one per line, commas, semicolons,
``Name <email>``), decides each address's outcome, limits reminders to one an hour
and answers only the department's admins. The console shows its answers.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Problem
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .record_view import role_name, when
from .routing import page_router
from .session import Session
from .templating import render

router = page_router()

INVITATIONS = "/departments/{dept}/invitations"
LABELS = {"emails": "Email addresses", "role": "Role"}
ROLES = ("member", "officer", "admin")
OUTCOMES = {
    "invited": "Invited",
    "already_member": "Already a member",
    "already_invited": "Already invited",
    "invalid": "Not valid",
}
NOTICES = {
    "reminded": "The reminder is on its way: the same link, sent again.",
    "revoked": "The invitation was revoked: its link no longer works.",
}


def _api(dept: uuid.UUID) -> str:
    return f"/v1/departments/{dept}/invitations"


async def _pending(api: Api, token: str, dept: uuid.UUID) -> list[dict[str, Any]]:
    """The invitations nobody has accepted yet, newest first (membership's refusal, 403 for
    a non-admin, is the page)."""
    result = await api.call("membership", "GET", _api(dept) + "?status=pending", token=token)
    items = list(expect(result).json().get("items") or [])
    return sorted(items, key=lambda i: str(i.get("created_at", "")), reverse=True)


def _refusal(problem: Problem) -> FormErrors:
    """A refusal of the form, next to its field (403 and 404 are pages of their own)."""
    if problem.status in (403, 404):
        raise PageProblem(problem)
    return errors_from(problem, LABELS)


async def page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    *,
    results: list[dict[str, Any]] | None = None,
    errors: FormErrors | None = None,
    emails: str = "",
    role: str = "member",
    notice: str = "",
    status: int = 200,
) -> Response:
    """The invite form, the outcome of the last paste, and the pending invitations."""
    pending, department = await asyncio.gather(
        _pending(api, session.token, dept), departments.resolve(api, session.token, dept)
    )
    return render(
        request,
        "invitations/index.html",
        {
            "department": department,
            "section": "invitations",
            "base": INVITATIONS.format(dept=dept),
            "pending": pending,
            "results": results,
            "counts": _counts(results or []),
            "errors": errors or FormErrors(),
            "emails": emails,
            "role": role if role in ROLES else "member",
            "roles": ROLES,
            "role_name": role_name,
            "outcomes": OUTCOMES,
            "when": when,
            "notice": notice,
        },
        status=status,
    )


def _counts(results: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """How many addresses got each outcome, in the order of ``OUTCOMES``."""
    tally = {key: 0 for key in OUTCOMES}
    for r in results:
        tally[r.get("outcome", "invalid")] = tally.get(r.get("outcome", "invalid"), 0) + 1
    return [(OUTCOMES[k], n) for k, n in tally.items() if n and k in OUTCOMES]


@router.get(INVITATIONS)
async def invitations_page(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, notice: str = ""
) -> Response:
    """Invite people, and see who has not accepted yet."""
    return await page(request, api, session, dept, notice=NOTICES.get(notice, ""))


@router.post(INVITATIONS)
async def invite(
    request: Request,
    dept: uuid.UUID,
    session: SignedIn,
    api: Api,
    emails: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "member",
) -> Response:
    """Invite the pasted addresses; the page lists each one's outcome."""
    if not emails.strip():
        errors = FormErrors()
        errors.add("Enter at least one email address.", "emails")
        return await page(request, api, session, dept, errors=errors, role=role, status=422)
    result = await api.call(
        "membership", "POST", _api(dept), token=session.token, json={"emails": emails, "role": role}
    )
    if isinstance(result, Problem):
        return await page(
            request,
            api,
            session,
            dept,
            errors=_refusal(result),
            emails=emails,
            role=role,
            status=result.status,
        )
    results = list(result.json().get("results") or [])
    return await page(request, api, session, dept, results=results, role=role)


def too_soon(problem: Problem, now: datetime | None = None) -> str:
    """Membership's "sent less than an hour ago", said with the time it can be sent again."""
    if problem.retry_after is None:
        return "This invitation was sent less than an hour ago. Try again later."
    at = (now or datetime.now(UTC)) + timedelta(seconds=problem.retry_after)
    return (
        "This invitation was sent less than an hour ago, so the person already has a fresh "
        f"email. You can send a reminder again at {at:%H:%M} UTC."
    )


@router.post(INVITATIONS + "/{invitation}/reminders")
async def remind(
    request: Request, dept: uuid.UUID, invitation: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Send the invitation again (the same link); too soon is said kindly, not as an error."""
    result = await api.call(
        "membership", "POST", f"{_api(dept)}/{invitation}/reminders", token=session.token
    )
    if isinstance(result, Problem):
        if result.slug == "reminder-too-soon":
            return await page(request, api, session, dept, notice=too_soon(result))
        errors = _refusal(result)
        return await page(request, api, session, dept, errors=errors, status=result.status)
    return RedirectResponse(INVITATIONS.format(dept=dept) + "?notice=reminded", status_code=303)


@router.get(INVITATIONS + "/{invitation}/revoke")
async def revoke_page(
    request: Request, dept: uuid.UUID, invitation: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Ask before revoking: the link stops working, and the person can be invited again."""
    pending, department = await asyncio.gather(
        _pending(api, session.token, dept), departments.resolve(api, session.token, dept)
    )
    found = next((i for i in pending if i.get("invitation_id") == str(invitation)), None)
    if found is None:
        return RedirectResponse(INVITATIONS.format(dept=dept), status_code=303)
    return render(
        request,
        "invitations/revoke.html",
        {
            "department": department,
            "section": "invitations",
            "base": INVITATIONS.format(dept=dept),
            "invitation": found,
        },
    )


@router.post(INVITATIONS + "/{invitation}/revoke")
async def revoke(
    request: Request, dept: uuid.UUID, invitation: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Withdraw the invitation: its link stops working at once."""
    result = await api.call(
        "membership", "DELETE", f"{_api(dept)}/{invitation}", token=session.token
    )
    if isinstance(result, Problem):
        errors = _refusal(result)
        return await page(request, api, session, dept, errors=errors, status=result.status)
    return RedirectResponse(INVITATIONS.format(dept=dept) + "?notice=revoked", status_code=303)
