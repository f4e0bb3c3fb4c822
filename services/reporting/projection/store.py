"""The projection's reads and writes of the read model: the rows a run of events
touches, loaded under lock, and what the fold changed, written back in few statements.

Every membership event is keyed by its department, so one department's events
arrive in the order they happened; the inbox drops exact redeliveries. Each
write below is still safe to repeat (set a value, add a group only if absent),
so a replay never doubles anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import accounts
from ..rules import UserRow
from ..tables import departments, groups, history, user_counts, users
from .rules import CountKey, DepartmentRow, GroupRow, HistoryRow, MemberKey


def _has_group(group_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.literal(group_id, UUID(as_uuid=True)) == sa.any_(users.c.groups)


def _touched(occurred_at: datetime) -> sa.ColumnElement[Any]:
    # Order comes from the partition; the timestamp only says when the row last changed.
    return sa.func.greatest(users.c.updated_at, occurred_at)


def _values(row: Any) -> dict[str, Any]:
    # Shallow: ``dataclasses.asdict`` deep-copies every value, which costs more than
    # the whole fold on a replay.
    return {f.name: getattr(row, f.name) for f in fields(row)}


def _last_per_key(rows: Iterable[Any], key: str) -> list[Any]:
    # One multi-row upsert may not touch a row twice: keep each key's last version.
    return list({getattr(r, key): r for r in rows}.values())


async def upsert_departments(conn: AsyncConnection, rows: Iterable[DepartmentRow]) -> None:
    """Record departments (a later event wins, an older one changes nothing)."""
    latest: dict[uuid.UUID, DepartmentRow] = {}
    for r in rows:
        kept = latest.get(r.department_id)
        if kept is None or kept.updated_at <= r.updated_at:
            latest[r.department_id] = r
    if not latest:
        return
    stmt = pg_insert(departments)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.department_id],
            set_={"name": stmt.excluded.name, "updated_at": stmt.excluded.updated_at},
            where=departments.c.updated_at <= stmt.excluded.updated_at,
        ),
        [_values(r) for r in latest.values()],
    )


async def upsert_groups(conn: AsyncConnection, rows: Iterable[GroupRow]) -> None:
    """Record groups or their new names (the last event of the run wins)."""
    values = [_values(r) for r in _last_per_key(rows, "group_id")]
    if not values:
        return
    stmt = pg_insert(groups)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[groups.c.group_id],
            set_={"name": stmt.excluded.name, "updated_at": stmt.excluded.updated_at},
        ),
        values,
    )


_ROW_COLUMNS = tuple(f.name for f in fields(UserRow))


async def load_members(
    conn: AsyncConnection, keys: Iterable[MemberKey]
) -> dict[MemberKey, UserRow | None]:
    """The stored rows for these keys (None where there is none), locked until commit.

    The lock keeps two consumers (a rebalance hands a partition over) from folding
    the same row at once; a run only ever reads rows of its own partition.
    """
    wanted = list(set(keys))
    found: dict[MemberKey, UserRow | None] = dict.fromkeys(wanted)
    if not wanted:
        return found
    stmt = (
        sa.select(*(users.c[c] for c in _ROW_COLUMNS))
        .where(sa.tuple_(users.c.department_id, users.c.account_id).in_(wanted))
        .with_for_update()
    )
    for r in (await conn.execute(stmt)).mappings():
        row = UserRow.of(r)
        found[(row.department_id, row.account_id)] = row
    return found


async def save_members(conn: AsyncConnection, rows: list[UserRow]) -> None:
    """Write rows the fold changed, whole (they were read under lock in this transaction)."""
    if not rows:
        return
    stmt = pg_insert(users)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[users.c.department_id, users.c.account_id],
            set_={
                c: stmt.excluded[c]
                for c in _ROW_COLUMNS
                if c not in ("department_id", "account_id")
            },
        ),
        [_values(r) for r in rows],
    )
    # Accounts renamed (or given a new login email) keep their latest on every row.
    await accounts.overlay(conn, [r.account_id for r in rows])


async def delete_members(conn: AsyncConnection, keys: Iterable[MemberKey]) -> None:
    """Delete these rows (a merged account's: the person's row is the kept account's)."""
    wanted = list(set(keys))
    if not wanted:
        return
    await conn.execute(
        sa.delete(users).where(sa.tuple_(users.c.department_id, users.c.account_id).in_(wanted))
    )


async def move_history(
    conn: AsyncConnection, department_id: uuid.UUID, merged: uuid.UUID, kept: uuid.UUID
) -> None:
    """The merged account's history in the department is the kept account's."""
    await conn.execute(
        sa.update(history)
        .where(history.c.department_id == department_id, history.c.account_id == merged)
        .values(account_id=kept)
    )


async def add_counts(conn: AsyncConnection, moves: dict[CountKey, int]) -> None:
    """Move the counts of current members per department, role and status.

    In key order: two transactions moving the same counts take their rows' locks in
    the same order (a rebalance can hand a department over while a run is applied).
    A count that reaches zero is deleted, so the table is the same however the events
    were grouped into runs (a rebuild folds them in larger runs than live consumption).
    """
    if not moves:
        return
    stmt = pg_insert(user_counts)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[user_counts.c.department_id, user_counts.c.role, user_counts.c.status],
            set_={"members": user_counts.c.members + stmt.excluded.members},
        ),
        [
            {"department_id": d, "role": role, "status": status, "members": n}
            for (d, role, status), n in sorted(
                moves.items(), key=lambda m: (str(m[0][0]), m[0][1:])
            )
        ],
    )
    lowered = [k for k, n in moves.items() if n < 0]
    if lowered:
        key = sa.tuple_(user_counts.c.department_id, user_counts.c.role, user_counts.c.status)
        await conn.execute(
            sa.delete(user_counts).where(key.in_(lowered), user_counts.c.members <= 0)
        )


async def add_history(conn: AsyncConnection, rows: list[HistoryRow]) -> None:
    """Record history entries (each event once)."""
    if not rows:
        return
    await conn.execute(
        pg_insert(history).on_conflict_do_nothing(index_elements=[history.c.event_id]),
        [_values(r) for r in rows],
    )


async def leave_group(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    group_id: uuid.UUID,
    occurred_at: datetime,
    account_id: uuid.UUID | None = None,
) -> None:
    """Take the group out of one person's row, or (``account_id`` None) out of every row."""
    where = [users.c.department_id == department_id, _has_group(group_id)]
    if account_id is not None:
        where.append(users.c.account_id == account_id)
    await conn.execute(
        sa.update(users)
        .where(*where)
        .values(
            groups=sa.func.array_remove(users.c.groups, group_id),
            updated_at=_touched(occurred_at),
        )
    )


async def delete_group(conn: AsyncConnection, group_id: uuid.UUID) -> None:
    """Forget a group."""
    await conn.execute(sa.delete(groups).where(groups.c.group_id == group_id))
