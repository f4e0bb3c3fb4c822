"""The department's activity log: every change to its people, who made it, to whom and
when; filterable by person, action and dates, paged, and downloadable as CSV.

The log is reporting's (admins of the department only: its 403 is the page anyone
else sees), newest first, one page at a time (keyset cursor); the download is
streamed from reporting to the browser without being held here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import Request
from starlette.responses import Response

from . import departments
from .activity_view import ACTIONS, ActivityView, action_name, details_text
from .clients import Ok, Problem, ServiceDown
from .deps import Api, SignedIn
from .errors import PageProblem
from .forms import FormErrors, errors_from
from .record_view import when
from .routing import page_router
from .templating import render

router = page_router()

# The form's fields (a problem with another, the person from a link or the page's
# cursor, is said in the summary without a link to a field).
FILTER_LABELS = {"action": "Action", "from": "From", "to": "To"}


async def _groups(api: Api, token: str, dept: uuid.UUID) -> dict[str, str]:
    """The department's groups by id, to name the group changes (none if unavailable)."""
    try:
        result = await api.call("membership", "GET", f"/v1/departments/{dept}/groups", token=token)
    except ServiceDown:
        return {}
    if not isinstance(result, Ok):
        return {}
    return {str(g["group_id"]): str(g["name"]) for g in result.json().get("items") or []}


@router.get("/departments/{dept}/activity")
async def activity_page(request: Request, dept: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """One page of the log (a filter change with htmx swaps the results only)."""
    view = ActivityView.parse(request.query_params)
    result, groups, department = await asyncio.gather(
        api.call(
            "reporting",
            "GET",
            f"/v1/reports/departments/{dept}/activity",
            token=session.token,
            params=view.report_params(),
        ),
        _groups(api, session.token, dept),
        departments.resolve(api, session.token, dept),
    )
    errors: FormErrors | None = None
    items: list[dict[str, Any]] = []
    next_cursor = None
    if isinstance(result, Problem):
        if result.status != 422:
            raise PageProblem(result)
        errors = errors_from(result, FILTER_LABELS)
    else:
        body = result.json()
        items = list(body.get("items") or [])
        next_cursor = body.get("next_cursor")
    # The chosen person's name, from any of their changes on this page.
    person_name = next(
        (e["person"]["name"] for e in items if e["person"]["account_id"] == view.person), None
    )
    base = f"/departments/{dept}/activity"
    return render(
        request,
        "activity/index.html",
        {
            "department": department,
            "view": view,
            "items": items,
            "errors": errors,
            "actions": ACTIONS,
            "action_name": action_name,
            "details": lambda entry: details_text(entry, groups),
            "person_name": person_name,
            "next_url": f"{base}?{view.next_query(next_cursor)}" if next_cursor else "",
            "first_url": f"{base}?{view.first_query()}" if view.cursor else "",
            "export_url": f"{base}/export?{view.export_query()}",
            "base": base,
            "when": when,
            "section": "activity",
        },
        block="results",
        status=422 if errors else 200,
    )


@router.get("/departments/{dept}/activity/export")
async def export_activity(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api
) -> Response:
    """Every change of the current view as CSV, streamed from reporting."""
    view = ActivityView.parse(request.query_params)
    download = await api.download(
        "reporting",
        f"/v1/reports/departments/{dept}/activity/export",
        token=session.token,
        params=view.filters(),
    )
    if isinstance(download, Problem):
        raise PageProblem(download)
    return download.passed_on("text/csv")
