"""Membership's tables and queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = sa.MetaData()

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column(
        "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), primary_key=True
    ),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("employee_id", sa.Text, nullable=True),
    sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index("ix_memberships_account", memberships.c.account_id)

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
    sa.Column("request", JSONB, nullable=False),
    sa.Column("result", JSONB, nullable=True),
    sa.Column("problem", JSONB, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
)


async def insert_department(conn: AsyncConnection, department_id: uuid.UUID, name: str) -> None:
    """A new department."""
    await conn.execute(sa.insert(departments).values(id=department_id, name=name))


async def department(conn: AsyncConnection, department_id: uuid.UUID) -> sa.Row[Any] | None:
    """The department, if it exists."""
    return (
        await conn.execute(sa.select(departments).where(departments.c.id == department_id))
    ).first()


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The account's current role in the department (None if not a member)."""
    return (
        await conn.execute(
            sa.select(memberships.c.role).where(
                memberships.c.department_id == department_id,
                memberships.c.account_id == account_id,
                memberships.c.removed_at.is_(None),
            )
        )
    ).scalar_one_or_none()


async def insert_membership(
    conn: AsyncConnection,
    *,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    name: str,
    email: str,
    role: str,
    joined_at: datetime,
) -> bool:
    """Add the membership unless it exists; True if added."""
    stmt = (
        pg_insert(memberships)
        .values(
            department_id=department_id,
            account_id=account_id,
            name=name,
            email=email,
            role=role,
            joined_at=joined_at,
        )
        .on_conflict_do_nothing()
        .returning(memberships.c.account_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> sa.Row[Any] | None:
    """The membership row (current members only)."""
    return (
        await conn.execute(
            sa.select(memberships).where(
                memberships.c.department_id == department_id,
                memberships.c.account_id == account_id,
                memberships.c.removed_at.is_(None),
            )
        )
    ).first()


async def insert_operation(
    conn: AsyncConnection,
    *,
    operation_id: uuid.UUID,
    kind: str,
    department_id: uuid.UUID,
    requested_by: uuid.UUID,
    request: dict[str, Any],
) -> None:
    """A pending operation."""
    await conn.execute(
        sa.insert(operations).values(
            id=operation_id,
            kind=kind,
            status="pending",
            department_id=department_id,
            requested_by=requested_by,
            request=request,
        )
    )


async def operation(
    conn: AsyncConnection, operation_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """An operation (row-locked when completing it)."""
    stmt = sa.select(operations).where(operations.c.id == operation_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def complete_operation(
    conn: AsyncConnection,
    operation_id: uuid.UUID,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    problem: dict[str, Any] | None = None,
    now: datetime,
) -> None:
    """Record an operation's outcome."""
    await conn.execute(
        sa.update(operations)
        .where(operations.c.id == operation_id)
        .values(status=status, result=result, problem=problem, completed_at=now)
    )
