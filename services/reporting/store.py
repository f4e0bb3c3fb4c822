"""Reporting's read-model tables and the queries on them (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.membership import MemberAdded

from .domain import UserRow, UsersQuery, sort_name

metadata = sa.MetaData()


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


departments = sa.Table(
    "departments",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    _timestamp("updated_at"),
)

# One row per (department, person): the users table and the individual record.
users = sa.Table(
    "users",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # casefold(name), compared bytewise: the order does not depend on the DB locale.
    sa.Column("sort_name", sa.Text(collation="C"), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("employee_id", sa.Text, nullable=True),
    sa.Column("groups", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    _timestamp("joined_at"),
    # When the event behind the row happened: an older event never overwrites a newer one.
    _timestamp("updated_at"),
)
sa.Index("users_by_name", users.c.department_id, users.c.sort_name, users.c.account_id)


async def upsert_department(
    conn: AsyncConnection, department_id: uuid.UUID, name: str, occurred_at: datetime
) -> None:
    """Record a department (a later event wins, an older one changes nothing)."""
    stmt = pg_insert(departments).values(
        department_id=department_id, name=name, updated_at=occurred_at
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.department_id],
            set_={"name": stmt.excluded.name, "updated_at": stmt.excluded.updated_at},
            where=departments.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def upsert_member(conn: AsyncConnection, event: MemberAdded, occurred_at: datetime) -> None:
    """Record a person's membership; groups are kept (they come from their own events)."""
    stmt = pg_insert(users).values(
        department_id=event.department_id,
        account_id=event.account_id,
        name=event.name,
        sort_name=sort_name(event.name),
        email=str(event.email),
        role=event.role,
        status=event.status,
        employee_id=event.employee_id,
        joined_at=event.joined_at,
        updated_at=occurred_at,
    )
    updated = ("name", "sort_name", "email", "role", "status", "employee_id", "joined_at")
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[users.c.department_id, users.c.account_id],
            set_={
                **{c: stmt.excluded[c] for c in updated},
                "updated_at": stmt.excluded.updated_at,
            },
            where=users.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The person's role in the department, or None if not a member."""
    row = await conn.execute(
        sa.select(users.c.role).where(
            users.c.department_id == department_id, users.c.account_id == account_id
        )
    )
    role: str | None = row.scalar_one_or_none()
    return role


def _user(row: sa.RowMapping) -> UserRow:
    return UserRow(**{**row, "groups": tuple(row["groups"])})


_USER_COLUMNS = (
    users.c.department_id,
    users.c.account_id,
    users.c.name,
    users.c.sort_name,
    users.c.email,
    users.c.role,
    users.c.status,
    users.c.employee_id,
    users.c.groups,
    users.c.joined_at,
)


async def page_users(conn: AsyncConnection, query: UsersQuery) -> list[UserRow]:
    """Up to ``query.limit + 1`` rows after the cursor (keyset paging, the extra says "more")."""
    stmt = sa.select(*_USER_COLUMNS).where(users.c.department_id == query.department_id)
    if query.after is not None:
        stmt = stmt.where(
            sa.tuple_(users.c.sort_name, users.c.account_id)
            > sa.tuple_(
                sa.literal(query.after.sort_name, sa.Text(collation="C")),
                sa.literal(query.after.account_id, UUID(as_uuid=True)),
            )
        )
    stmt = stmt.order_by(users.c.sort_name, users.c.account_id).limit(query.limit + 1)
    return [_user(r) for r in (await conn.execute(stmt)).mappings()]


async def get_user(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow | None:
    """The person's record in the department, or None if not a member there."""
    row = (
        (
            await conn.execute(
                sa.select(*_USER_COLUMNS).where(
                    users.c.department_id == department_id, users.c.account_id == account_id
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _user(row)
