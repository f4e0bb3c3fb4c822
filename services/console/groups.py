"""The department's groups: the list with member counts, create, rename, delete, and
each group's members.

Groups are membership's (admins only: its answer is what stops anyone else); the
members of a group are reporting's users table filtered by the group, one page at a
time, each name a link to the person's record.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Problem, ServiceDown
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .groups_view import find_group, members_query
from .routing import page_router
from .session import Session
from .templating import render

router = page_router()

LABELS = {"name": "Group name"}
GROUPS = "/departments/{dept}/groups"
GROUP = GROUPS + "/{group}"


def _api_groups(dept: uuid.UUID) -> str:
    return f"/v1/departments/{dept}/groups"


async def _groups(api: Api, token: str, dept: uuid.UUID) -> list[dict[str, Any]]:
    """The department's groups (membership's refusal, 403 for a non-admin, is the page)."""
    result = await api.call("membership", "GET", _api_groups(dept), token=token)
    return list(expect(result).json().get("items") or [])


def _errors(problem: Problem) -> FormErrors:
    """A refusal next to the name field (a 403 or 404 is a page of its own)."""
    if problem.status in (403, 404) and problem.slug != "group-not-found":
        raise PageProblem(problem)
    errors = errors_from(problem, LABELS)
    if problem.slug == "group-name-taken" or (problem.status == 409 and not errors.fields):
        errors = FormErrors()
        errors.add(problem.detail, "name")
    return errors


async def _list_page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    name: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    groups, department = await asyncio.gather(
        _groups(api, session.token, dept), departments.resolve(api, session.token, dept)
    )
    return render(
        request,
        "groups/index.html",
        {
            "department": department,
            "groups": sorted(groups, key=lambda g: str(g.get("name", "")).casefold()),
            "errors": errors or FormErrors(),
            "name": name,
            "notice": notice,
            "base": GROUPS.format(dept=dept),
            "section": "groups",
        },
        status=status,
    )


@router.get(GROUPS)
async def groups_page(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, notice: str = ""
) -> Response:
    """The groups with their member counts, and the form that creates one."""
    shown = {"deleted": "The group was deleted. Its members are still in the department."}
    return await _list_page(request, api, session, dept, notice=shown.get(notice, ""))


@router.post(GROUPS)
async def create_group(
    request: Request,
    dept: uuid.UUID,
    session: SignedIn,
    api: Api,
    name: Annotated[str, Form()] = "",
) -> Response:
    """Create a group; the list shows it (or says why not, next to the name)."""
    result = await api.call(
        "membership", "POST", _api_groups(dept), token=session.token, json={"name": name.strip()}
    )
    if isinstance(result, Problem):
        return await _list_page(
            request, api, session, dept, errors=_errors(result), name=name, status=result.status
        )
    created = result.json()
    return await _list_page(
        request, api, session, dept, notice=f"Group {created.get('name', name)} created."
    )


async def _group_page(
    request: Request,
    api: Api,
    session: Session,
    dept: uuid.UUID,
    group: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    name: str | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    cursor = request.query_params.get("cursor")
    groups, department, members = await asyncio.gather(
        _groups(api, session.token, dept),
        departments.resolve(api, session.token, dept),
        _members(api, session.token, dept, group, cursor),
    )
    found = find_group(groups, group)
    if found is None:
        return render(
            request,
            "errors/not_found.html",
            {"problem": None, "department": department},
            status=404,
        )
    return render(
        request,
        "groups/group.html",
        {
            "department": department,
            "group": found,
            "members": members,
            "errors": errors or FormErrors(),
            "name": found["name"] if name is None else name,
            "notice": notice,
            "base": GROUP.format(dept=dept, group=group),
            "groups_url": GROUPS.format(dept=dept),
            "users_url": f"/departments/{dept}/users",
            "cursor": cursor,
            "section": "groups",
        },
        status=status,
    )


async def _members(
    api: Api, token: str, dept: uuid.UUID, group: uuid.UUID, cursor: str | None
) -> dict[str, Any]:
    """One page of the group's members (reporting's users table, filtered by the group);
    ``down`` says which service did not answer, the rest of the page still shows."""
    try:
        result = await api.call(
            "reporting",
            "GET",
            f"/v1/reports/departments/{dept}/users",
            token=token,
            params=members_query(group, cursor),
        )
    except ServiceDown as down:
        return {"items": [], "down": down.label}
    if isinstance(result, Problem):
        return {"items": [], "down": None, "refused": result.detail}
    return result.json()


@router.get(GROUP)
async def group_page(
    request: Request, dept: uuid.UUID, group: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """One group: its members (links to their records), rename, delete."""
    return await _group_page(request, api, session, dept, group)


@router.post(GROUP + "/rename")
async def rename_group(
    request: Request,
    dept: uuid.UUID,
    group: uuid.UUID,
    session: SignedIn,
    api: Api,
    name: Annotated[str, Form()] = "",
) -> Response:
    """Give the group a new name."""
    result = await api.call(
        "membership",
        "PATCH",
        f"{_api_groups(dept)}/{group}",
        token=session.token,
        json={"name": name.strip()},
    )
    if isinstance(result, Problem):
        errors = _errors(result)
        return await _group_page(
            request, api, session, dept, group, errors=errors, name=name, status=result.status
        )
    renamed = result.json()
    notice = f"The group is now called {renamed.get('name', name)}."
    return await _group_page(request, api, session, dept, group, notice=notice)


@router.get(GROUP + "/delete")
async def delete_page(
    request: Request, dept: uuid.UUID, group: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Are you sure? (its members stay in the department)."""
    groups, department = await asyncio.gather(
        _groups(api, session.token, dept), departments.resolve(api, session.token, dept)
    )
    found = find_group(groups, group)
    if found is None:
        return render(
            request,
            "errors/not_found.html",
            {"problem": None, "department": department},
            status=404,
        )
    return render(
        request,
        "groups/delete.html",
        {
            "department": department,
            "group": found,
            "errors": FormErrors(),
            "base": GROUP.format(dept=dept, group=group),
            "section": "groups",
        },
    )


@router.post(GROUP + "/delete")
async def delete_group(
    request: Request, dept: uuid.UUID, group: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Delete the group, then back to the list, which says so."""
    result = await api.call(
        "membership", "DELETE", f"{_api_groups(dept)}/{group}", token=session.token
    )
    if isinstance(result, Problem) and result.slug != "group-not-found":
        raise PageProblem(result)
    # Gone either way (deleted now, or already): the list says so.
    return RedirectResponse(GROUPS.format(dept=dept) + "?notice=deleted", status_code=303)


@router.get(GROUP + "/rename", include_in_schema=False)
async def back_to_group(dept: uuid.UUID, group: uuid.UUID) -> Response:
    """The rename form's address opened as a page: the group it belongs to."""
    return RedirectResponse(GROUP.format(dept=dept, group=group), status_code=303)
