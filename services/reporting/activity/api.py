"""The activity log's HTTP routes: a page of a view, and the view as CSV (admins only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from prodigy_users.runtime.openapi import CURSOR, UUID_PATTERN, listed, raises

from ..deps import ActivityLogService, ActivityViewer
from ..errors import InvalidActivityFilter, InvalidCursor
from ..exports import export_response
from ..record.api import ActorPublic
from .rules import ACTIONS, DEFAULT_LIMIT, MAX_LIMIT, ActivityEntry, ActivityView, parse_filters

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class PersonPublic(BaseModel):
    """Whom a change was made to: an account, or for an invitation an address."""

    account_id: uuid.UUID | None = Field(
        description="Their account; null for an invitation (it names an address, whose "
        "owner may have no account yet)."
    )
    name: str | None = Field(
        default=None,
        description="Their name as reporting knows it now; for an invitation, the name the "
        "admin typed with the address, if any.",
        examples=["Sam Rivera"],
    )
    email: str | None = Field(
        default=None,
        description="The invited address (invitations only).",
        examples=["new.hire@example.org"],
    )


class ActivityEntryPublic(BaseModel):
    """One change in the department: what, to whom, by whom, when."""

    event_id: uuid.UUID = Field(description="The event behind the change (unique).")
    at: datetime = Field(description="When it happened (UTC).")
    action: str = Field(description=f"One of {', '.join(ACTIONS)}.", examples=["role_changed"])
    person: PersonPublic
    by: ActorPublic
    details: dict[str, Any] = Field(
        default={},
        description='What changed, as in the record\'s history (`{"role": "officer", '
        '"previous_role": "member"}`); a join by invitation also has `invited_by`.',
    )

    @classmethod
    def of(cls, entry: ActivityEntry) -> ActivityEntryPublic:
        """The public shape of a change."""
        return cls(
            event_id=entry.event_id,
            at=entry.at,
            action=entry.action,
            person=PersonPublic(
                account_id=entry.person_id, name=entry.person_name, email=entry.person_email
            ),
            by=ActorPublic.of(entry.by),
            details=entry.details,
        )


class ActivityPagePublic(BaseModel):
    """A page of the activity log, newest first; pass `next_cursor` back for the next page
    (with the same filters)."""

    items: list[ActivityEntryPublic]
    next_cursor: str | None = Field(default=None, description="Absent at the last page.")


_DAY = {"pattern": r"^\s*(?:[0-9]{4}-[0-9]{2}-[0-9]{2})?\s*$"}


@raises(InvalidActivityFilter)
async def activity_view(
    dept: uuid.UUID,
    person: Annotated[
        str | None,
        Query(
            description="Only changes to this person (an account id).",
            json_schema_extra={"pattern": rf"^\s*(?:{UUID_PATTERN})?\s*$"},
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        Query(
            description=f"Only these actions: {', '.join(ACTIONS)}. Several values: repeat "
            "the parameter or separate them with commas.",
            json_schema_extra=listed("|".join(ACTIONS)),
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            alias="from",
            description="From this day on (UTC, `YYYY-MM-DD`, included).",
            json_schema_extra=_DAY,
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="Up to this day (UTC, `YYYY-MM-DD`, included).", json_schema_extra=_DAY),
    ] = None,
) -> ActivityView:
    """The view the query asks for (``InvalidActivityFilter`` naming each bad parameter)."""
    return parse_filters(dept, person=person, action=action, since=since, to=to)


View = Annotated[ActivityView, Depends(activity_view)]


@router.get(
    "/departments/{dept}/activity/export",
    operation_id="export_department_activity",
    response_class=StreamingResponse,
    responses={200: {"description": "The CSV file, streamed.", "content": {"text/csv": {}}}},
)
async def export_department_activity(
    dept: uuid.UUID,
    _: ActivityViewer,
    view: View,
    log: ActivityLogService,
    bom: Annotated[
        bool, Query(description="Start with a UTF-8 byte-order mark (for Excel).")
    ] = False,
) -> StreamingResponse:
    """Every change of the view (same filters as the log), newest first, as CSV; cells a
    spreadsheet would run as formulas are neutralised like the users table's export."""
    return export_response(await log.export(view, bom=bom))


@router.get(
    "/departments/{dept}/activity",
    operation_id="list_department_activity",
    response_model=ActivityPagePublic,
)
@raises(InvalidCursor)
async def list_department_activity(
    dept: uuid.UUID,
    _: ActivityViewer,
    view: View,
    log: ActivityLogService,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Changes per page.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", json_schema_extra=CURSOR),
    ] = None,
) -> ActivityPagePublic:
    """The department's activity log (admins only): every change to its people, who made
    it, to whom and when; newest first, filtered by person, action and dates, paged."""
    page = await log.page(view, limit=limit, cursor=cursor)
    return ActivityPagePublic(
        items=[ActivityEntryPublic.of(e) for e in page.items], next_cursor=page.next_cursor
    )
