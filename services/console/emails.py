"""The department's email log: what was sent to whom, its kind, status and failures.

The log is notifications' (admins of the department only: its 403 is the page
anyone else sees), newest first, one page at a time (keyset cursor), filterable by
status. It never shows an email's link or token (notifications does not keep
them in the log's answer).
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import Request
from starlette.responses import Response

from . import departments
from .deps import Api, SignedIn
from .emails_view import STATUSES, kind_name, log_params, page_query, status_filter
from .errors import expect
from .record_view import when
from .routing import page_router
from .templating import render

router = page_router()


@router.get("/departments/{dept}/emails")
async def emails_page(request: Request, dept: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """One page of the log (a filter change with htmx swaps the results only)."""
    status = status_filter(request.query_params.get("status"))
    cursor = request.query_params.get("cursor") or None
    result, department = await asyncio.gather(
        api.call(
            "notifications",
            "GET",
            f"/v1/notifications/departments/{dept}/emails",
            token=session.token,
            params=log_params(status, cursor),
        ),
        departments.resolve(api, session.token, dept),
    )
    body = expect(result).json()
    base = f"/departments/{dept}/emails"
    next_cursor = body.get("next_cursor")
    return render(
        request,
        "emails/index.html",
        {
            "department": department,
            "items": list(body.get("items") or []),
            "status": status,
            "statuses": STATUSES,
            "cursor": cursor,
            "next_url": f"{base}?{page_query(status, next_cursor)}" if next_cursor else "",
            "first_url": f"{base}?{page_query(status)}" if cursor else "",
            "base": base,
            "kind_name": kind_name,
            "status_names": dict(STATUSES),
            "when": when,
            "section": "emails",
        },
        block="results",
    )
