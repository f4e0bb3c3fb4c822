"""The users table's HTTP routes: a page of a view, and the view exported.

The export's route is declared here, and this router is included before the
record's (``record/api.py``, whose ``/users/{account}`` would match it too), so
``/users/export`` is never read as an account id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from prodigy_users.runtime.openapi import CURSOR, UUID_PATTERN, listed, no_values, raises

from ..deps import ReportViewer, UsersTableService
from ..errors import InvalidCursor, InvalidView
from ..exports import export_response
from ..rules import ROLES, STATUSES, GroupRef, UserRow
from .export import MEDIA_TYPES, ExportFormat
from .rules import (
    COUNT_CAP,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_SEARCH,
    MIN_COUNTED_SEARCH,
    SORT_COLUMNS,
    UsersView,
    parse_view,
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
        default=[], description="The person's groups, by name."
    )
    joined_at: datetime
    updated_at: datetime | None = Field(
        default=None, description="The row's last change (UTC): role, status, groups, ..."
    )

    @classmethod
    def of(cls, row: UserRow, groups: Iterable[GroupRef]) -> UserPublic:
        """The public shape of a stored row, with its groups named."""
        return cls(
            account_id=row.account_id,
            name=row.name,
            email=row.email,
            role=row.role,
            status=row.status,
            employee_id=row.employee_id,
            groups=[GroupPublic.of(g) for g in groups],
            joined_at=row.joined_at,
            updated_at=row.updated_at,
        )


class UsersPagePublic(BaseModel):
    """A page of the users table in the order asked for; pass `next_cursor` back for the
    next page (with the same filters and sort)."""

    items: list[UserPublic]
    next_cursor: str | None = Field(default=None, description="Absent at the last page.")
    total: int | None = Field(
        default=None,
        description=(
            "How many people the view has, all pages together: counted with the first page, "
            "and carried by `next_cursor` to the next ones (one figure for a walk through "
            "the view). Exact when `total_exact` is true. A view with a search or a group filter "
            f"is counted up to {COUNT_CAP:,}: past that, `total` is {COUNT_CAP:,} and "
            "`total_exact` false (more than that many). Null for a search shorter than "
            f"{MIN_COUNTED_SEARCH} characters, which is not counted."
        ),
        examples=[1234],
    )
    total_exact: bool = Field(
        default=False, description="Whether `total` is the exact number of people in the view."
    )


_SEVERAL = "Several values: repeat the parameter or separate them with commas."


@raises(InvalidView)
async def users_view(
    dept: uuid.UUID,
    role: Annotated[
        list[str],
        Query(
            default_factory=no_values,
            description=f"`admin`, `officer`, `member`. {_SEVERAL}",
            json_schema_extra=listed("|".join(ROLES)),
        ),
    ],
    status: Annotated[
        list[str],
        Query(
            default_factory=no_values,
            description=f"`active`, `inactive`. {_SEVERAL}",
            json_schema_extra=listed("|".join(STATUSES)),
        ),
    ],
    group: Annotated[
        list[str],
        Query(
            default_factory=no_values,
            description=f"Group ids of the department (any of). {_SEVERAL}",
            json_schema_extra=listed(UUID_PATTERN),
        ),
    ],
    q: Annotated[
        str | None,
        Query(
            description="Part of a name, email or employee ID (case- and accent-insensitive).",
            max_length=MAX_SEARCH,
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description=f"One of {', '.join(SORT_COLUMNS)}; `-` first for descending "
            "(`-joined_at`). Ties go by account id; rows without an employee ID come last.",
            examples=["name", "-joined_at"],
            # Documented only: ``parse_view`` refuses the rest, naming the parameter.
            json_schema_extra={"pattern": rf"^\s*(?:-?(?:{'|'.join(SORT_COLUMNS)}))?\s*$"},
        ),
    ] = None,
) -> UsersView:
    """The view the query asks for (``InvalidView`` naming each bad parameter)."""
    return parse_view(dept, role=role, status=status, group=group, q=q, sort=sort)


View = Annotated[UsersView, Depends(users_view)]


@router.get(
    "/departments/{dept}/users/export",
    operation_id="export_department_users",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, streamed.",
            "content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()},
        }
    },
)
async def export_department_users(
    dept: uuid.UUID,
    _: ReportViewer,
    view: View,
    users: UsersTableService,
    file_format: Annotated[
        ExportFormat, Query(alias="format", description="`csv` or `xlsx`.")
    ] = "csv",
    bom: Annotated[
        bool, Query(description="CSV only: start with a UTF-8 byte-order mark (for Excel).")
    ] = False,
) -> StreamingResponse:
    """Every row of the view (same filters and sort as the table) as CSV or XLSX."""
    return export_response(await users.export(view, file_format, bom=bom))


@router.get(
    "/departments/{dept}/users",
    operation_id="list_department_users",
    response_model=UsersPagePublic,
)
@raises(InvalidCursor)
async def list_department_users(
    dept: uuid.UUID,
    _: ReportViewer,
    view: View,
    users: UsersTableService,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", json_schema_extra=CURSOR),
    ] = None,
) -> UsersPagePublic:
    """The department's users table (admins and officers): filtered, searched, sorted, paged."""
    page = await users.page(view, limit=limit, cursor=cursor)
    return UsersPagePublic(
        items=[UserPublic.of(r, page.groups.refs(r.groups)) for r in page.items],
        next_cursor=page.next_cursor,
        total=page.total.rows if page.total else None,
        total_exact=page.total.exact if page.total else False,
    )
