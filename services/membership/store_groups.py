"""Groups and who is in them: tables and queries."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .store import memberships, metadata

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_normalised", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("department_id", "name_normalised", name="ux_groups_name"),
)

# Rows stay while a person is removed, so their groups come back with them.
group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column(
        "group_id",
        UUID(as_uuid=True),
        sa.ForeignKey("groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sa.Index("ix_group_members_account", group_members.c.department_id, group_members.c.account_id)

_CURRENT = sa.and_(
    memberships.c.department_id == group_members.c.department_id,
    memberships.c.account_id == group_members.c.account_id,
    memberships.c.removed_at.is_(None),
)


async def group(
    conn: AsyncConnection, department_id: uuid.UUID, group_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """A group of the department."""
    stmt = sa.select(groups).where(groups.c.department_id == department_id, groups.c.id == group_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def name_taken(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: str, other_than: uuid.UUID | None
) -> bool:
    """Whether another group of the department has this name."""
    stmt = sa.select(groups.c.id).where(
        groups.c.department_id == department_id, groups.c.name_normalised == normalised
    )
    if other_than is not None:
        stmt = stmt.where(groups.c.id != other_than)
    return (await conn.execute(stmt)).first() is not None


async def listing(conn: AsyncConnection, department_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The department's groups with how many current members each has."""
    count = (
        sa.select(sa.func.count())
        .select_from(group_members.join(memberships, _CURRENT))
        .where(group_members.c.group_id == groups.c.id)
        .scalar_subquery()
    )
    return list(
        await conn.execute(
            sa.select(groups, count.label("member_count"))
            .where(groups.c.department_id == department_id)
            .order_by(groups.c.name_normalised)
        )
    )


async def current_members(conn: AsyncConnection, group_id: uuid.UUID) -> list[uuid.UUID]:
    """Accounts of current members in the group."""
    rows = await conn.execute(
        sa.select(group_members.c.account_id)
        .select_from(group_members.join(memberships, _CURRENT))
        .where(group_members.c.group_id == group_id)
    )
    return [r[0] for r in rows]


async def groups_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> list[uuid.UUID]:
    """The groups a person is (or, while removed, was) in."""
    rows = await conn.execute(
        sa.select(group_members.c.group_id)
        .where(
            group_members.c.department_id == department_id,
            group_members.c.account_id == account_id,
        )
        .order_by(group_members.c.added_at)
    )
    return [r[0] for r in rows]


async def add_member(
    conn: AsyncConnection, department_id: uuid.UUID, group_id: uuid.UUID, account_id: uuid.UUID
) -> bool:
    """Put a person in a group; True if they were not in it."""
    stmt = (
        pg_insert(group_members)
        .values(group_id=group_id, account_id=account_id, department_id=department_id)
        .on_conflict_do_nothing()
        .returning(group_members.c.group_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def remove_member(conn: AsyncConnection, group_id: uuid.UUID, account_id: uuid.UUID) -> bool:
    """Take a person out of a group; True if they were in it."""
    result = await conn.execute(
        sa.delete(group_members)
        .where(group_members.c.group_id == group_id, group_members.c.account_id == account_id)
        .returning(group_members.c.group_id)
    )
    return result.first() is not None
