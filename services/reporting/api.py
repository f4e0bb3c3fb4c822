"""Reporting's HTTP routes: the users table (and its export)."""

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
    GroupRef,
    InvalidCursor,
    UserRow,
    UsersQuery,
    decode_cursor,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class GroupPublic(BaseModel):
    """A group a person is in."""

    group_id: uuid.UUID
    name: str = Field(examples=["Night shift"])

    @classmethod
    def of(cls, group: GroupRef) -> GroupPublic:
        """The public shape of a group reference."""
        return cls(group_id=group.group_id, name=group.name)


class UserPublic(BaseModel):
    """One row of the users table."""

    account_id: uuid.UUID
    name: str = Field(examples=["Ana Lima"])
    email: str = Field(examples=["ana.lima@example.org"])
    role: str = Field(description="`admin`, `officer` or `member`.", examples=["member"])
    status: str = Field(description="`active` or `inactive`.", examples=["active"])
    employee_id: str | None = None
    groups: list[GroupPublic] = Field(
        default_factory=list, description="The person's groups, by name."
    )
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
            groups=[GroupPublic.of(g) for g in row.groups],
            joined_at=row.joined_at,
        )


class UsersPagePublic(BaseModel):
    """A page of the users table, sorted by name; pass `next_cursor` back for the next."""

    items: list[UserPublic]
    next_cursor: str | None = Field(default=None, description="Absent at the last page.")


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
