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
    sa.Column("invitation_ttl_s", sa.Integer, nullable=True),
)

# What membership knows of global accounts, from identity's events.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalised", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
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
    sa.Column("invited_email", sa.Text, nullable=True),
)
sa.Index("ix_memberships_account", memberships.c.account_id)
# Kept while someone is removed, so their ID comes back with them.
sa.Index(
    "ux_memberships_employee_id",
    memberships.c.department_id,
    memberships.c.employee_id,
    unique=True,
    postgresql_where=memberships.c.employee_id.is_not(None),
)

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
    invited_email: str | None = None,
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
            invited_email=invited_email,
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


async def upsert_account(
    conn: AsyncConnection, account_id: uuid.UUID, email: str, name: str
) -> None:
    """Remember an account identity told us about."""
    values = {"email": email, "email_normalised": email.strip().lower(), "name": name}
    await conn.execute(
        pg_insert(accounts)
        .values(account_id=account_id, **values)
        .on_conflict_do_update(index_elements=["account_id"], set_=values)
    )


async def account(conn: AsyncConnection, account_id: uuid.UUID) -> sa.Row[Any] | None:
    """A known account."""
    return (
        await conn.execute(sa.select(accounts).where(accounts.c.account_id == account_id))
    ).first()


async def any_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """The membership row, current or removed."""
    stmt = sa.select(memberships).where(
        memberships.c.department_id == department_id, memberships.c.account_id == account_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def current_member_emails(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: list[str]
) -> set[str]:
    """Which of these addresses belong to current members (membership or account email)."""
    current = sa.and_(
        memberships.c.department_id == department_id, memberships.c.removed_at.is_(None)
    )
    by_membership = sa.select(sa.func.lower(memberships.c.email)).where(
        current, sa.func.lower(memberships.c.email).in_(normalised)
    )
    by_account = (
        sa.select(accounts.c.email_normalised)
        .join(memberships, memberships.c.account_id == accounts.c.account_id)
        .where(current, accounts.c.email_normalised.in_(normalised))
    )
    rows = await conn.execute(sa.union(by_membership, by_account))
    return {r[0] for r in rows}


async def count_admins(conn: AsyncConnection, department_id: uuid.UUID) -> int:
    """Current admins of the department."""
    return int(
        (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    memberships.c.department_id == department_id,
                    memberships.c.role == "admin",
                    memberships.c.removed_at.is_(None),
                )
            )
        ).scalar_one()
    )


async def update_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID, **values: Any
) -> None:
    """Change a membership row."""
    await conn.execute(
        sa.update(memberships)
        .where(memberships.c.department_id == department_id, memberships.c.account_id == account_id)
        .values(updated_at=sa.func.now(), **values)
    )


def now() -> sa.ColumnElement[datetime]:
    """The database's clock (one clock for every replica)."""
    return sa.func.now()
