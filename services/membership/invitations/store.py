"""Invitations and self-registration links: queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import invitations, registration_links


def effective_status(now: datetime) -> sa.ColumnElement[str]:
    """The status as people see it: a pending invitation past its expiry is expired."""
    return sa.case(
        (
            sa.and_(invitations.c.status == "pending", invitations.c.expires_at <= now),
            sa.literal("expired"),
        ),
        else_=invitations.c.status,
    )


async def insert_pending(conn: AsyncConnection, **values: Any) -> bool:
    """A new pending invitation unless the address has one; True if inserted."""
    stmt = (
        pg_insert(invitations)
        .values(status="pending", **values)
        .on_conflict_do_nothing(
            index_elements=["department_id", "email_normalised"],
            # Literal, not a bound parameter: PostgreSQL matches the partial index by text.
            index_where=sa.text("status = 'pending'"),
        )
        .returning(invitations.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def pending_for(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: list[str]
) -> dict[str, sa.Row[Any]]:
    """Pending invitations by normalised address (locked: a reminder may follow)."""
    rows = await conn.execute(
        sa.select(invitations)
        .where(
            invitations.c.department_id == department_id,
            invitations.c.status == "pending",
            invitations.c.email_normalised.in_(normalised),
        )
        .order_by(invitations.c.email_normalised)  # one lock order for everyone
        .with_for_update()
    )
    return {r.email_normalised: r for r in rows}


async def by_id(
    conn: AsyncConnection, department_id: uuid.UUID, invitation_id: uuid.UUID
) -> sa.Row[Any] | None:
    """An invitation of the department, locked."""
    return (
        await conn.execute(
            sa.select(invitations)
            .where(invitations.c.department_id == department_id, invitations.c.id == invitation_id)
            .with_for_update()
        )
    ).first()


async def by_token(conn: AsyncConnection, token_hash: str) -> sa.Row[Any] | None:
    """The invitation a link points to, locked so two accepts cannot both win."""
    return (
        await conn.execute(
            sa.select(invitations).where(invitations.c.token_hash == token_hash).with_for_update()
        )
    ).first()


async def release_claim(conn: AsyncConnection, operation_id: uuid.UUID) -> None:
    """The registration ``operation_id`` lets go of the invitation it claimed, if any."""
    await conn.execute(
        sa.update(invitations)
        .where(invitations.c.claimed_by == operation_id)
        .values(claimed_by=None)
    )


async def set_fields(conn: AsyncConnection, invitation_id: uuid.UUID, **values: Any) -> None:
    """Change an invitation."""
    await conn.execute(
        sa.update(invitations).where(invitations.c.id == invitation_id).values(**values)
    )


async def listing(
    conn: AsyncConnection, department_id: uuid.UUID, status: str | None, now: datetime
) -> list[sa.Row[Any]]:
    """The department's invitations, newest first, optionally of one status."""
    status_col = effective_status(now).label("effective_status")
    stmt = (
        sa.select(invitations, status_col)
        .where(invitations.c.department_id == department_id)
        .order_by(invitations.c.created_at.desc(), invitations.c.id)
    )
    if status is not None:
        stmt = stmt.where(effective_status(now) == status)
    return list(await conn.execute(stmt))


async def lapsed(
    conn: AsyncConnection,
    now: datetime,
    *,
    department_id: uuid.UUID | None = None,
    normalised: list[str] | None = None,
    limit: int = 500,
) -> list[sa.Row[Any]]:
    """Pending invitations past their expiry, locked.

    For the sweep (no department): up to ``limit`` of them, skipping rows others hold.
    For one department's addresses: all of them, waiting for their locks, so none is
    still pending (and answered as invited, with a dead link) once this returns.
    """
    stmt = sa.select(invitations).where(
        invitations.c.status == "pending", invitations.c.expires_at <= now
    )
    if department_id is None:
        stmt = stmt.limit(limit).with_for_update(skip_locked=True)
    else:
        stmt = stmt.where(invitations.c.department_id == department_id)
        if normalised is not None:
            stmt = stmt.where(invitations.c.email_normalised.in_(normalised))
        stmt = stmt.order_by(invitations.c.email_normalised).with_for_update()
    return list(await conn.execute(stmt))


async def link(conn: AsyncConnection, department_id: uuid.UUID) -> sa.Row[Any] | None:
    """The department's registration link, if one was ever made."""
    return (
        await conn.execute(
            sa.select(registration_links).where(registration_links.c.department_id == department_id)
        )
    ).first()


async def link_by_token(conn: AsyncConnection, token_hash: str) -> sa.Row[Any] | None:
    """The registration link a token belongs to."""
    return (
        await conn.execute(
            sa.select(registration_links).where(registration_links.c.token_hash == token_hash)
        )
    ).first()


async def put_link(conn: AsyncConnection, department_id: uuid.UUID, **values: Any) -> None:
    """Create or replace the department's link (the old token stops working)."""
    await conn.execute(
        pg_insert(registration_links)
        .values(department_id=department_id, **values)
        .on_conflict_do_update(index_elements=["department_id"], set_=values)
    )


async def disable_link(conn: AsyncConnection, department_id: uuid.UUID) -> bool:
    """Switch self-registration off; True if a link was on."""
    result = await conn.execute(
        sa.update(registration_links)
        .where(registration_links.c.department_id == department_id, registration_links.c.enabled)
        .values(enabled=False)
        .returning(registration_links.c.department_id)
    )
    return result.first() is not None
