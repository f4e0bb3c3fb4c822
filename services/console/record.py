"""One person's individual record, and what an admin does to it.

The record is reporting's (profile, history, training plans, transcript, totals);
every action is membership's (role, employee ID, status, groups, password reset,
remove). A page shows what the services answered: after a change, the profile
shows membership's answer, and the page says the record catches up in a moment
only when reporting still has the old value (it is fed by events). It never
waits for reporting. Each action is a plain form (it works without script);
with htmx the record alone is swapped.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Ok, Problem, Result, ServiceDown
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .record_view import (
    Outcome,
    Profile,
    catching_up,
    day,
    group_choices,
    group_names,
    history,
    number,
    parse_uuid,
    role_name,
    when,
)
from .routing import page_router
from .session import Session
from .templating import render

router = page_router()

LABELS = {
    "role": "Role",
    "status": "Status",
    "employee_id": "Employee ID",
    "group": "Group",
    "name": "Full name",
}
RECORD = "/departments/{dept}/users/{account}"


def _base(dept: uuid.UUID, account: uuid.UUID) -> str:
    return RECORD.format(dept=dept, account=account)


def _member_path(dept: uuid.UUID, account: uuid.UUID) -> str:
    return f"/v1/departments/{dept}/members/{account}"


async def _record(api: Api, token: str, dept: uuid.UUID, account: uuid.UUID) -> dict[str, Any]:
    """Reporting's record (its refusal, 403 or 404, is the page)."""
    result = await api.call(
        "reporting", "GET", f"/v1/reports/departments/{dept}/users/{account}", token=token
    )
    return expect(result).json()


async def _groups(api: Api, token: str, dept: uuid.UUID) -> list[dict[str, Any]]:
    """The department's groups (admins may list them; others get none)."""
    try:
        result = await api.call("membership", "GET", f"/v1/departments/{dept}/groups", token=token)
    except ServiceDown:
        return []
    return list(result.json().get("items") or []) if isinstance(result, Ok) else []


async def _page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    account: uuid.UUID,
    outcome: Outcome | None = None,
    *,
    status: int = 200,
) -> Response:
    record, department, groups = await asyncio.gather(
        _record(api, session.token, dept, account),
        departments.resolve(api, session.token, dept),
        _groups(api, session.token, dept),
    )
    names = group_names(record, groups)
    shown = Profile.of(record)
    expected = outcome.expected(shown, names) if outcome else None
    profile = expected or shown
    context = {
        "department": department,
        "record": record,
        "profile": profile,
        "behind": catching_up(shown, expected),
        "outcome": outcome,
        "notice": outcome.sentence(profile, names) if outcome and outcome.notice else "",
        "errors": outcome.errors if outcome else FormErrors(),
        "history": history(record, names),
        "choices": group_choices(profile, groups),
        "base": _base(dept, account),
        "section": "users",
        "role_name": role_name,
        "day": day,
        "when": when,
        "number": number,
    }
    return render(request, "record/index.html", context, block="record", status=status)


@router.get(RECORD)
async def record_page(
    request: Request, dept: uuid.UUID, account: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """The record; actions for admins (the services decide whether they may)."""
    return await _page(request, api, session, dept, account)


def _refusal(problem: Problem, action: str, values: dict[str, str] | None = None) -> Outcome:
    """A change membership refused: a page of its own when the admin may not act here or
    the person is gone (403, 404), else the reason next to the action (409, 422...)."""
    if problem.status in (403, 404):
        raise PageProblem(problem)
    errors = errors_from(problem, LABELS)
    if problem.slug == "employee-id-taken":
        # Its detail says it better than the field's "already used in this department".
        errors = FormErrors()
        errors.add(problem.detail, "employee_id")
    return Outcome(action, errors=errors, values=values or {})


async def _changed(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    account: uuid.UUID,
    result: Result,
    outcome: Outcome,
) -> Response:
    """The record after a PATCH: membership's answer (the member) is what it shows."""
    if isinstance(result, Problem):
        refused = _refusal(result, outcome.action, outcome.values)
        return await _page(request, api, session, dept, account, refused, status=result.status)
    outcome.member = result.json()
    return await _page(request, api, session, dept, account, outcome)


@router.post(RECORD + "/role")
async def change_role(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    session: SignedIn,
    api: Api,
    role: Annotated[str, Form()] = "",
) -> Response:
    """Change the person's role."""
    result = await api.call(
        "membership", "PATCH", _member_path(dept, account), token=session.token, json={"role": role}
    )
    article = "an" if role in ("admin", "officer") else "a"
    outcome = Outcome(
        "role",
        "{name} is now {article} {role_name}.",
        values={"role": role, "article": article, "role_name": role_name(role)},
    )
    return await _changed(request, api, session, dept, account, result, outcome)


@router.post(RECORD + "/name")
async def set_name(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    session: SignedIn,
    api: Api,
    name: Annotated[str, Form()] = "",
) -> Response:
    """Correct the person's name: it is their account's, so every department shows it."""
    result = await api.call(
        "membership", "PATCH", _member_path(dept, account), token=session.token, json={"name": name}
    )
    outcome = Outcome(
        "name",
        "Name changed to {name}. It is their account's name, so every department they "
        "belong to shows it.",
        # Not "name": the notice's {name} is the person's name as the record shows it.
        values={"new_name": name},
    )
    return await _changed(request, api, session, dept, account, result, outcome)


@router.post(RECORD + "/employee-id")
async def set_employee_id(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    session: SignedIn,
    api: Api,
    employee_id: Annotated[str, Form()] = "",
) -> Response:
    """Set (or, empty, clear) the person's employee ID."""
    value = employee_id.strip()
    result = await api.call(
        "membership",
        "PATCH",
        _member_path(dept, account),
        token=session.token,
        json={"employee_id": value or None},
    )
    notice = "Employee ID set to {employee_id}." if value else "Employee ID cleared."
    outcome = Outcome("employee_id", notice, values={"employee_id": value})
    return await _changed(request, api, session, dept, account, result, outcome)


@router.post(RECORD + "/status")
async def set_status(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    session: SignedIn,
    api: Api,
    status: Annotated[str, Form()] = "",
) -> Response:
    """Mark the person active or inactive (a reporting flag: access is unchanged)."""
    result = await api.call(
        "membership",
        "PATCH",
        _member_path(dept, account),
        token=session.token,
        json={"status": status},
    )
    outcome = Outcome("status", "{name} is marked {status}.", values={"status": status})
    return await _changed(request, api, session, dept, account, result, outcome)


async def _group_change(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    account: uuid.UUID,
    group: str,
    *,
    join: bool,
) -> Response:
    group_id = parse_uuid(group)
    if group_id is None:
        errors = FormErrors()
        errors.add("Choose a group.", "group")
        outcome = Outcome("groups", errors=errors)
        return await _page(request, api, session, dept, account, outcome, status=422)
    result = await api.call(
        "membership",
        "PUT" if join else "DELETE",
        f"/v1/departments/{dept}/groups/{group_id}/members/{account}",
        token=session.token,
    )
    if isinstance(result, Problem):
        if result.slug == "group-not-found":
            errors = FormErrors()
            errors.add("That group no longer exists: choose another.", "group")
            outcome = Outcome("groups", errors=errors)
            return await _page(request, api, session, dept, account, outcome, status=404)
        outcome = _refusal(result, "groups")
        return await _page(request, api, session, dept, account, outcome, status=result.status)
    # 204: done. The profile shows it at once, whether or not reporting has it yet.
    notice = "{name} was added to {group}." if join else "{name} left {group}."
    outcome = Outcome("groups", notice, group=(str(group_id), join))
    return await _page(request, api, session, dept, account, outcome)


@router.post(RECORD + "/groups")
async def add_to_group(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    session: SignedIn,
    api: Api,
    group: Annotated[str, Form()] = "",
) -> Response:
    """Put the person in one of the department's groups."""
    return await _group_change(request, api, session, dept, account, group, join=True)


@router.post(RECORD + "/groups/{group}/remove")
async def remove_from_group(
    request: Request, dept: uuid.UUID, account: uuid.UUID, group: str, session: SignedIn, api: Api
) -> Response:
    """Take the person out of a group (they stay in the department)."""
    return await _group_change(request, api, session, dept, account, group, join=False)


@router.post(RECORD + "/password-reset")
async def send_password_reset(
    request: Request, dept: uuid.UUID, account: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Ask membership to email the person a reset link."""
    result = await api.call(
        "membership", "POST", _member_path(dept, account) + "/password-reset", token=session.token
    )
    if isinstance(result, Problem):
        outcome = _refusal(result, "password")
        return await _page(request, api, session, dept, account, outcome, status=result.status)
    notice = (
        "A password reset email is on its way to {email}. "
        "Its link lets them set a new password once, within an hour."
    )
    return await _page(request, api, session, dept, account, Outcome("password", notice))


@router.get(RECORD + "/remove")
async def remove_page(
    request: Request, dept: uuid.UUID, account: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Are you sure? (what removing does, and how to bring them back)."""
    record, department = await asyncio.gather(
        _record(api, session.token, dept, account), departments.resolve(api, session.token, dept)
    )
    return _remove_page(request, dept, account, record, department, FormErrors())


def _remove_page(
    request: Request,
    dept: uuid.UUID,
    account: uuid.UUID,
    record: dict[str, Any],
    department: departments.DepartmentView,
    errors: FormErrors,
    status: int = 200,
) -> Response:
    return render(
        request,
        "record/remove.html",
        {
            "department": department,
            "profile": Profile.of(record),
            "errors": errors,
            "base": _base(dept, account),
            "section": "users",
        },
        status=status,
    )


@router.post(RECORD + "/remove")
async def remove_member(
    request: Request, dept: uuid.UUID, account: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Remove the person from the department (their account and records stay)."""
    record, department = await asyncio.gather(
        _record(api, session.token, dept, account), departments.resolve(api, session.token, dept)
    )
    result = await api.call(
        "membership", "DELETE", _member_path(dept, account), token=session.token
    )
    if isinstance(result, Problem):
        outcome = _refusal(result, "remove")
        return _remove_page(
            request, dept, account, record, department, outcome.errors, result.status
        )
    return render(
        request,
        "record/removed.html",
        {
            "department": department,
            "profile": Profile.of(record),
            "users": f"/departments/{dept}/users",
            "section": "users",
        },
    )


@router.get(RECORD + "/certificates/{certificate}")
async def certificate_pdf(
    dept: uuid.UUID, account: uuid.UUID, certificate: str, session: SignedIn, api: Api
) -> Response:
    """One certificate of the transcript as a PDF, streamed from reporting with its name."""
    download = await api.download(
        "reporting",
        f"/v1/reports/departments/{dept}/users/{account}/certificates/{certificate}",
        token=session.token,
    )
    if isinstance(download, Problem):
        raise PageProblem(download)
    return download.passed_on("application/pdf")


def _back_to_record(path: str) -> None:
    """A form's address opened as a page (a reload, a bookmark): the record it belongs to."""

    @router.get(RECORD + path, include_in_schema=False)
    async def back(dept: uuid.UUID, account: uuid.UUID) -> Response:
        return RedirectResponse(_base(dept, account), status_code=303)


for _path in ("/role", "/employee-id", "/status", "/groups", "/password-reset"):
    _back_to_record(_path)
_back_to_record("/groups/{group}/remove")
