"""Departments: queries."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import departments


async def insert_department(conn: AsyncConnection, department_id: uuid.UUID, name: str) -> None:
    """A new department."""
    await conn.execute(sa.insert(departments).values(id=department_id, name=name))


async def department(conn: AsyncConnection, department_id: uuid.UUID) -> sa.Row[Any] | None:
    """The department, if it exists."""
    return (
        await conn.execute(sa.select(departments).where(departments.c.id == department_id))
    ).first()


async def lock_department(conn: AsyncConnection, department_id: uuid.UUID) -> None:
    """Hold the department's row until the transaction ends (``FOR NO KEY UPDATE``: rows
    that only refer to the department, new members or invitations, are not held up)."""
    await conn.execute(
        sa.select(departments.c.id)
        .where(departments.c.id == department_id)
        .with_for_update(key_share=True)
    )


async def set_invitation_ttl(
    conn: AsyncConnection, department_id: uuid.UUID, invitation_ttl_s: int
) -> None:
    """How long the department's invitations stay valid."""
    await conn.execute(
        sa.update(departments)
        .where(departments.c.id == department_id)
        .values(invitation_ttl_s=invitation_ttl_s)
    )
