"""Reporting's read-model tables and the queries on them (SQLAlchemy Core).

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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import HistoryEntry, UserRow, group_refs
from .projection import DepartmentRow, GroupRow, HistoryRow, MemberKey, MemberRow

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
# A removed person's row stays (``removed_at`` set) with their groups and employee
# ID, hidden everywhere, so a restore brings it back as it was.
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
    # Group ids; names come from ``groups`` when read, so a rename touches one row.
    sa.Column(
        "groups",
        ARRAY(UUID(as_uuid=True)),
        nullable=False,
        server_default=sa.text("'{}'::uuid[]"),
    ),
    _timestamp("joined_at"),
    # When the latest event behind the row happened.
    _timestamp("updated_at"),
    _timestamp("removed_at", nullable=True),
)
sa.Index("users_by_name", users.c.department_id, users.c.sort_name, users.c.account_id)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("group_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    _timestamp("updated_at"),
)

# What happened to each membership, for the individual record. Keyed by the event,
# so applying an event twice records it once.
history = sa.Table(
    "member_history",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    sa.Column("account_id", UUID(as_uuid=True), nullable=False),
    _timestamp("occurred_at"),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)
sa.Index(
    "member_history_by_member",
    history.c.department_id,
    history.c.account_id,
    history.c.occurred_at,
)

# Which rebuild of the read model this is (no row: never rebuilt). ``prodigy-users
# replay reporting`` writes it when it switches over; running services watch it.
read_model = sa.Table(
    "read_model",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Text, nullable=False),
    _timestamp("built_at"),
    sa.Column("events", sa.BigInteger, nullable=False),
)

_CURRENT = users.c.removed_at.is_(None)


def _member(department_id: uuid.UUID, account_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(users.c.department_id == department_id, users.c.account_id == account_id)


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


_ROW_COLUMNS = tuple(f.name for f in fields(MemberRow))
_KEY_COLUMNS = ("department_id", "account_id")


async def load_members(
    conn: AsyncConnection, keys: Iterable[MemberKey]
) -> dict[MemberKey, MemberRow | None]:
    """The stored rows for these keys (None where there is none), locked until commit.

    The lock keeps two consumers (a rebalance hands a partition over) from folding
    the same row at once; a run only ever reads rows of its own partition.
    """
    wanted = list(set(keys))
    found: dict[MemberKey, MemberRow | None] = dict.fromkeys(wanted)
    if not wanted:
        return found
    stmt = (
        sa.select(*(users.c[c] for c in _ROW_COLUMNS))
        .where(sa.tuple_(users.c.department_id, users.c.account_id).in_(wanted))
        .with_for_update()
    )
    for r in (await conn.execute(stmt)).mappings():
        row = MemberRow(**{**r, "groups": list(r["groups"])})
        found[(row.department_id, row.account_id)] = row
    return found


async def save_members(conn: AsyncConnection, rows: list[MemberRow]) -> None:
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


async def history_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> list[HistoryEntry]:
    """A membership's history, oldest first."""
    rows = await conn.execute(
        sa.select(history.c.occurred_at, history.c.event, history.c.details)
        .where(history.c.department_id == department_id, history.c.account_id == account_id)
        .order_by(history.c.occurred_at, history.c.event_id)
    )
    return [HistoryEntry(r.occurred_at, r.event, dict(r.details)) for r in rows]


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The person's role in the department, or None if not a member (or removed)."""
    row = await conn.execute(
        sa.select(users.c.role).where(_member(department_id, account_id), _CURRENT)
    )
    role: str | None = row.scalar_one_or_none()
    return role


# What a users-table row (``UserRow``) is read from, here and in ``queries``.
USER_COLUMNS = (
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
    users.c.updated_at,
)


async def _group_names(
    conn: AsyncConnection, department_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await conn.execute(
        sa.select(groups.c.group_id, groups.c.name).where(
            groups.c.department_id == department_id, groups.c.group_id.in_(wanted)
        )
    )
    return {r.group_id: r.name for r in rows}


async def _users(
    conn: AsyncConnection, department_id: uuid.UUID, rows: list[sa.RowMapping]
) -> list[UserRow]:
    names = await _group_names(conn, department_id, (g for r in rows for g in r["groups"]))
    return [UserRow(**{**r, "groups": group_refs(r["groups"], names)}) for r in rows]


async def get_user(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow | None:
    """The person's record in the department, or None if not a member there (or removed)."""
    stmt = sa.select(*USER_COLUMNS).where(_member(department_id, account_id), _CURRENT)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        return None
    return (await _users(conn, department_id, [row]))[0]


# The users table's read indexes are declared beside the queries they serve (they
# share the key expressions): import them so the metadata, and Alembic, see them.
from . import queries as _queries  # noqa: E402, F401
