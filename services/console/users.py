"""The users table of a department: filters, search, sort, paging, how many people a view
has, and export.

Reporting's users table answers one page at a time (keyset cursor), so a
department of 100,000 members costs one page per request; the export is streamed
from reporting to the browser without being held here.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from . import departments
from .clients import Ok, Problem, ServiceDown
from .deps import Api, SignedIn
from .errors import PageProblem
from .forms import FormErrors, errors_from
from .routing import page_router
from .templating import render
from .users_view import COLUMNS, PAGE_SIZES, ROLES, STATUSES, UsersView

router = page_router()

FILTER_LABELS = {
    "role": "Role",
    "status": "Status",
    "group": "Group",
    "q": "Search",
    "sort": "Sort",
    "cursor": "Page",
    "limit": "Rows per page",
}
EXPORT_FORMATS = {"csv": "CSV", "xlsx": "Excel (XLSX)"}


@dataclass
class Rows:
    """The page of rows, or why there is none."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    errors: FormErrors | None = None
    down: str | None = None
    total: int | None = None
    total_exact: bool = False

    @property
    def people(self) -> str:
        """How many people the view has, in words ("1,234 people", "More than 1,000 people")."""
        if self.total is None:
            return ""
        noun = "person" if self.total == 1 and self.total_exact else "people"
        figure = f"{self.total:,} {noun}"
        return figure if self.total_exact else f"More than {figure}"


def _view(request: Request) -> UsersView:
    q = request.query_params
    return UsersView.parse(
        role=q.get("role"),
        status=q.get("status"),
        group=q.get("group"),
        q=q.get("q"),
        sort=q.get("sort"),
        limit=q.get("limit"),
        cursor=q.get("cursor"),
        page=q.get("page"),
    )


async def _rows(api: Api, token: str, dept: uuid.UUID, view: UsersView) -> Rows:
    try:
        result = await api.call(
            "reporting",
            "GET",
            f"/v1/reports/departments/{dept}/users",
            token=token,
            params=view.report_params(),
        )
    except ServiceDown as down:
        return Rows([], down=down.label)
    if isinstance(result, Problem):
        if result.status == 422:
            return Rows([], errors=errors_from(result, FILTER_LABELS))
        raise PageProblem(result)
    body = result.json()
    total = body.get("total")
    return Rows(
        list(body.get("items") or []),
        body.get("next_cursor"),
        total=total if isinstance(total, int) else None,
        total_exact=bool(body.get("total_exact")),
    )


async def _groups(api: Api, token: str, dept: uuid.UUID) -> list[dict[str, Any]]:
    """The department's groups for the filter (admins may list them; others get none)."""
    try:
        result = await api.call("membership", "GET", f"/v1/departments/{dept}/groups", token=token)
    except ServiceDown:
        return []
    return list(result.json().get("items") or []) if isinstance(result, Ok) else []


@router.get("/departments/{dept}/users")
async def users_page(request: Request, dept: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """The table; an htmx request (a filter change) gets only the results block."""
    view = _view(request)
    rows, groups, department = await asyncio.gather(
        _rows(api, session.token, dept, view),
        _groups(api, session.token, dept),
        departments.resolve(api, session.token, dept),
    )
    return render(
        request,
        "users/index.html",
        {
            "department": department,
            "view": view,
            "rows": rows,
            "groups": groups,
            "roles": ROLES,
            "statuses": STATUSES,
            "page_sizes": PAGE_SIZES,
            "columns": COLUMNS,
            "formats": EXPORT_FORMATS,
            "base": f"/departments/{dept}/users",
            "section": "users",
        },
        block="results",
        status=422 if rows.errors else 200,
    )


@router.get("/departments/{dept}/users/export")
async def export_users(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, format: str = "csv"
) -> Response:
    """Exactly the current view (filters, search, sort) as a file, streamed from reporting."""
    view = _view(request)
    download = await api.download(
        "reporting",
        f"/v1/reports/departments/{dept}/users/export",
        token=session.token,
        params=view.export_params(format),
    )
    if isinstance(download, Problem):
        raise PageProblem(download)
    return download.passed_on("application/octet-stream")
