"""Reporting's HTTP routes: the users table and the individual record."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from prodigy_users.runtime.problems import Problem

from . import service
from .deps import Engine, ReportViewer
from .domain import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    UserRow,
    UsersQuery,
    decode_cursor,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class UserPublic(BaseModel):
    """One row of the users table."""

    account_id: uuid.UUID
    name: str = Field(examples=["Ana Lima"])
    email: str = Field(examples=["ana.lima@example.org"])
    role: str = Field(description="`admin`, `officer` or `member`.", examples=["member"])
    status: str = Field(description="`active` or `inactive`.", examples=["active"])
    employee_id: str | None = None
    groups: list[str] = Field(default_factory=list, description="Names of the person's groups.")
    joined_at: datetime

    @classmethod
    def of(cls, row: UserRow) -> UserPublic:
        """The public shape of a stored row."""
        return cls(
            account_id=row.account_id,
            name=row.name,
            email=row.email,
            role=row.role,
            status=row.status,
            employee_id=row.employee_id,
            groups=list(row.groups),
            joined_at=row.joined_at,
        )


class UsersPagePublic(BaseModel):
    """A page of the users table, sorted by name; pass `next_cursor` back for the next."""

    items: list[UserPublic]
    next_cursor: str | None = Field(default=None, description="Absent at the last page.")


class UserRecord(UserPublic):
    """The individual record of a person in one department."""

    department_id: uuid.UUID


@router.get(
    "/departments/{dept}/users",
    operation_id="list_department_users",
    response_model=UsersPagePublic,
)
async def list_department_users(
    dept: uuid.UUID,
    _: ReportViewer,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> UsersPagePublic:
    """The department's users table: admins and officers of the department."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except InvalidCursor as exc:
        raise Problem(
            422,
            "validation",
            "Invalid request",
            "Some fields are missing or invalid; see `errors`.",
            errors=[{"field": "cursor", "message": str(exc)}],
        ) from exc
    page = await service.users_page(engine, UsersQuery(dept, limit=limit, after=after))
    return UsersPagePublic(
        items=[UserPublic.of(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/departments/{dept}/users/{account}",
    operation_id="get_department_user",
    response_model=UserRecord,
)
async def get_department_user(
    dept: uuid.UUID, account: uuid.UUID, _: ReportViewer, engine: Engine
) -> UserRecord:
    """One person's record in the department; 404 if they are not a member there."""
    row = await service.user_record(engine, dept, account)
    if row is None:
        raise Problem(404, "not-found", "Not found", "This person is not a member here.")
    return UserRecord(department_id=row.department_id, **UserPublic.of(row).model_dump())
