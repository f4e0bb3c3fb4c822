"""Notifications' HTTP routes: the department's email log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from prodigy_users.runtime.openapi import CURSOR, listed, no_values, raises

from .deps import DepartmentAdmin, EmailLogService
from .domain import EMAIL_STATUSES, EmailLogEntry, EmailStatus, decode_cursor, parse_statuses
from .errors import InvalidCursor, UnknownStatus

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


class EmailPublic(BaseModel):
    """One entry of the delivery log (never the link or its token)."""

    id: uuid.UUID
    to: str = Field(description="Recipient address.")
    template: str = Field(description="Which email.", examples=["welcome"])
    status: EmailStatus = Field(
        description="`pending` (queued), `sending` (an attempt is under way), `retrying` "
        "(an attempt failed; the next is at `next_attempt_at`), `sent` or `failed` (given "
        "up: refused for good, or the last attempt failed).",
        examples=["sent"],
    )
    attempts: int = Field(description="Attempts made so far.", examples=[1])
    created_at: datetime = Field(description="When the email was queued.")
    sent_at: datetime | None = Field(default=None, description="When the relay took it.")
    last_attempt_at: datetime | None = Field(
        default=None, description="When it was last tried, if ever."
    )
    next_attempt_at: datetime | None = Field(
        default=None, description="When it will be tried next (`pending` and `retrying`)."
    )
    last_error: str | None = Field(default=None, description="The last error, if any.")

    @classmethod
    def of(cls, entry: EmailLogEntry) -> EmailPublic:
        """The public shape of a log entry."""
        return cls(
            id=entry.id,
            to=entry.to,
            template=entry.template,
            status=entry.status,
            attempts=entry.attempts,
            created_at=entry.created_at,
            sent_at=entry.sent_at,
            last_attempt_at=entry.last_attempt_at,
            next_attempt_at=entry.next_attempt_at,
            last_error=entry.last_error,
        )


class EmailsPage(BaseModel):
    """A page of the email log, newest first; pass `next_cursor` back for the next."""

    items: list[EmailPublic]
    next_cursor: str | None = Field(default=None, description="Absent at the last page.")


@router.get(
    "/departments/{dept}/emails",
    operation_id="list_department_emails",
    response_model=EmailsPage,
)
@raises(InvalidCursor, UnknownStatus)
async def list_department_emails(
    dept: uuid.UUID,
    _: DepartmentAdmin,
    email_log: EmailLogService,
    status: Annotated[
        list[str],
        Query(
            default_factory=no_values,
            description="Only emails in these states (repeat it, or separate with commas), "
            "e.g. `retrying,failed`.",
            json_schema_extra=listed("|".join(EMAIL_STATUSES)),
        ),
    ],
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", json_schema_extra=CURSOR),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50,
) -> EmailsPage:
    """The department's email log, newest first: admins of the department only."""
    statuses = parse_statuses(status or [])
    after = decode_cursor(cursor) if cursor else None
    entries, next_cursor = await email_log.page(
        dept, statuses=statuses, after=after, limit=limit
    )
    return EmailsPage(items=[EmailPublic.of(e) for e in entries], next_cursor=next_cursor)
