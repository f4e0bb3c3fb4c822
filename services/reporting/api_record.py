"""Reporting's HTTP routes for one person: the individual record."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from prodigy_users.runtime.problems import Problem

from . import service
from .api import UserPublic
from .deps import Engine, ReportViewer
from .domain import HistoryEntry

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class HistoryEntryPublic(BaseModel):
    """One thing that happened to the membership."""

    at: datetime = Field(description="When it happened (UTC).")
    event: str = Field(
        description=(
            "`joined`, `role_changed`, `status_changed`, `employee_id_set`, `joined_group`, "
            "`left_group`, `removed` or `restored`."
        ),
        examples=["role_changed"],
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description='What changed, e.g. `{"role": "officer", "previous_role": "member"}`.',
    )

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryPublic:
        """The public shape of a history entry."""
        return cls(at=entry.at, event=entry.event, details=entry.details)


class UserRecord(UserPublic):
    """The individual record of a person in one department."""

    department_id: uuid.UUID
    history: list[HistoryEntryPublic] = Field(
        default_factory=list, description="The membership's history, oldest first."
    )


@router.get(
    "/departments/{dept}/users/{account}",
    operation_id="get_department_user",
    response_model=UserRecord,
)
async def get_department_user(
    dept: uuid.UUID, account: uuid.UUID, _: ReportViewer, engine: Engine
) -> UserRecord:
    """One person's record in the department; 404 if they are not (or no longer) a member."""
    found = await service.user_record(engine, dept, account)
    if found is None:
        raise Problem(404, "not-found", "Not found", "This person is not a member here.")
    row, entries = found
    public = UserPublic.of(row)
    return UserRecord(
        department_id=row.department_id,
        history=[HistoryEntryPublic.of(e) for e in entries],
        **{name: getattr(public, name) for name in UserPublic.model_fields},
    )
