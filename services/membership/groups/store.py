"""Groups and who is in them: queries."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import group_members, groups, memberships
from .rules import group_key

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
    added = await insert_group_members(
        conn, [{"group_id": group_id, "account_id": account_id, "department_id": department_id}]
    )
    return bool(added)


async def remove_member(conn: AsyncConnection, group_id: uuid.UUID, account_id: uuid.UUID) -> bool:
    """Take a person out of a group; True if they were in it."""
    result = await conn.execute(
        sa.delete(group_members)
        .where(group_members.c.group_id == group_id, group_members.c.account_id == account_id)
        .returning(group_members.c.group_id)
    )
    return result.first() is not None


async def insert_group(
    conn: AsyncConnection, department_id: uuid.UUID, group_id: uuid.UUID, name: str
) -> None:
    """A new group (its name must be free: see ``name_taken``)."""
    await conn.execute(
        groups.insert().values(
            id=group_id, department_id=department_id, name=name, name_normalised=group_key(name)
        )
    )


async def rename_group(conn: AsyncConnection, group_id: uuid.UUID, name: str) -> None:
    """A group's new name."""
    await conn.execute(
        groups.update()
        .where(groups.c.id == group_id)
        .values(name=name, name_normalised=group_key(name))
    )


async def delete_group(conn: AsyncConnection, group_id: uuid.UUID) -> None:
    """Delete a group (who was in it goes with it)."""
    await conn.execute(groups.delete().where(groups.c.id == group_id))


# -- many people at once (a bulk import meets thousands) --------------------------------------


async def group_ids(conn: AsyncConnection, department_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The department's groups by normalised name."""
    rows = await conn.execute(
        sa.select(groups.c.name_normalised, groups.c.id).where(
            groups.c.department_id == department_id
        )
    )
    return {r.name_normalised: r.id for r in rows}


async def groups_of_accounts(
    conn: AsyncConnection, department_id: uuid.UUID, account_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Each account's groups in the department: ``{normalised name: name}``."""
    if not account_ids:
        return {}
    rows = await conn.execute(
        sa.select(group_members.c.account_id, groups.c.name_normalised, groups.c.name)
        .join(groups, groups.c.id == group_members.c.group_id)
        .where(
            group_members.c.department_id == department_id,
            group_members.c.account_id.in_(account_ids),
        )
    )
    out: dict[uuid.UUID, dict[str, str]] = {a: {} for a in account_ids}
    for account_id, key, name in rows:
        out[account_id][key] = name
    return out


async def insert_group_members(
    conn: AsyncConnection, rows: list[dict[str, Any]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Put many people in groups; the ``(group_id, account_id)`` pairs that are new."""
    if not rows:
        return set()
    result = await conn.execute(
        pg_insert(group_members)
        .on_conflict_do_nothing()
        .returning(group_members.c.group_id, group_members.c.account_id),
        rows,
    )
    return {(r[0], r[1]) for r in result}
