"""Notifications' HTTP routes: the department's email log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from . import service
from .deps import DepartmentAdmin, Engine
from .domain import EmailStatus

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


class EmailPublic(BaseModel):
    """One entry of the delivery log (never the link or its token)."""

    id: uuid.UUID
    to: str = Field(description="Recipient address.")
    template: str = Field(description="Which email.", examples=["welcome"])
    status: EmailStatus = Field(
        description="`pending`, `sending`, `retrying`, `sent` or `failed`.", examples=["sent"]
    )
    attempts: int = Field(description="Attempts made so far.", examples=[1])
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, description="The last error, if any.")


class EmailsPage(BaseModel):
    """The email log, newest first."""

    items: list[EmailPublic]


@router.get(
    "/departments/{dept}/emails",
    operation_id="list_department_emails",
    response_model=EmailsPage,
)
async def list_department_emails(
    dept: uuid.UUID,
    _: DepartmentAdmin,
    engine: Engine,
    status: Annotated[EmailStatus | None, Query(description="Only emails in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50,
) -> EmailsPage:
    """The department's email log: admins of the department only."""
    entries = await service.email_log(engine, dept, status=status, limit=limit)
    return EmailsPage(
        items=[
            EmailPublic(
                id=e.id,
                to=e.to,
                template=e.template,
                status=e.status,
                attempts=e.attempts,
                created_at=e.created_at,
                sent_at=e.sent_at,
                last_error=e.last_error,
            )
            for e in entries
        ]
    )
