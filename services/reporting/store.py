"""Reporting's read-model tables and the queries on them (SQLAlchemy Core).

Every membership event is keyed by its department, so one department's events
arrive in the order they happened; the inbox drops exact redeliveries. Each
write below is still safe to repeat (set a value, add a group only if absent),
so a replay never doubles anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.membership import MemberAdded, MemberRestored

from .domain import HistoryEntry, UserRow, UsersQuery, group_refs, sort_name

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

_CURRENT = users.c.removed_at.is_(None)


def _member(department_id: uuid.UUID, account_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(users.c.department_id == department_id, users.c.account_id == account_id)


def _has_group(group_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.literal(group_id, UUID(as_uuid=True)) == sa.any_(users.c.groups)


def _touched(occurred_at: datetime) -> sa.ColumnElement[Any]:
    # Order comes from the partition; the timestamp only says when the row last changed.
    return sa.func.greatest(users.c.updated_at, occurred_at)


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
        removed_at=None,
    )
    updated = (
        "name",
        "sort_name",
        "email",
        "role",
        "status",
        "employee_id",
        "joined_at",
        "removed_at",
    )
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


async def restore_member(
    conn: AsyncConnection, event: MemberRestored, occurred_at: datetime
) -> None:
    """A removed person is back: visible again, with the role, status, ID and groups sent.

    The row keeps its first ``joined_at``; a row we never had starts at the restore.
    """
    stmt = pg_insert(users).values(
        department_id=event.department_id,
        account_id=event.account_id,
        name=event.name,
        sort_name=sort_name(event.name),
        email=str(event.email),
        role=event.role,
        status=event.status,
        employee_id=event.employee_id,
        groups=list(dict.fromkeys(event.group_ids)),
        joined_at=event.restored_at,
        updated_at=occurred_at,
        removed_at=None,
    )
    updated = ("name", "sort_name", "email", "role", "status", "employee_id", "groups")
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[users.c.department_id, users.c.account_id],
            set_={
                **{c: stmt.excluded[c] for c in updated},
                "removed_at": None,
                "updated_at": _touched(occurred_at),
            },
        )
    )


async def update_member(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    occurred_at: datetime,
    **values: Any,
) -> None:
    """Set columns of a person's row (role, status, employee_id, removed_at)."""
    await conn.execute(
        sa.update(users)
        .where(_member(department_id, account_id))
        .values(**values, updated_at=_touched(occurred_at))
    )


async def join_group(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    group_id: uuid.UUID,
    occurred_at: datetime,
) -> None:
    """Add the group to the person's row, unless it is there already."""
    await conn.execute(
        sa.update(users)
        .where(
            _member(department_id, account_id),
            sa.not_(_has_group(group_id)),
        )
        .values(
            groups=sa.func.array_append(users.c.groups, group_id),
            updated_at=_touched(occurred_at),
        )
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


async def upsert_group(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    group_id: uuid.UUID,
    name: str,
    occurred_at: datetime,
) -> None:
    """Record a group or its new name."""
    stmt = pg_insert(groups).values(
        group_id=group_id, department_id=department_id, name=name, updated_at=occurred_at
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[groups.c.group_id],
            set_={"name": stmt.excluded.name, "updated_at": stmt.excluded.updated_at},
        )
    )


async def delete_group(conn: AsyncConnection, group_id: uuid.UUID) -> None:
    """Forget a group."""
    await conn.execute(sa.delete(groups).where(groups.c.group_id == group_id))


async def add_history(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    occurred_at: datetime,
    event: str,
    details: dict[str, Any],
) -> None:
    """Record one event of a membership's history (once per event)."""
    await conn.execute(
        pg_insert(history)
        .values(
            event_id=event_id,
            department_id=department_id,
            account_id=account_id,
            occurred_at=occurred_at,
            event=event,
            details=details,
        )
        .on_conflict_do_nothing(index_elements=[history.c.event_id])
    )


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


async def page_users(conn: AsyncConnection, query: UsersQuery) -> list[UserRow]:
    """Up to ``query.limit + 1`` rows after the cursor (keyset paging, the extra says "more")."""
    stmt = sa.select(*_USER_COLUMNS).where(users.c.department_id == query.department_id, _CURRENT)
    if query.after is not None:
        stmt = stmt.where(
            sa.tuple_(users.c.sort_name, users.c.account_id)
            > sa.tuple_(
                sa.literal(query.after.sort_name, sa.Text(collation="C")),
                sa.literal(query.after.account_id, UUID(as_uuid=True)),
            )
        )
    stmt = stmt.order_by(users.c.sort_name, users.c.account_id).limit(query.limit + 1)
    rows = list((await conn.execute(stmt)).mappings())
    return await _users(conn, query.department_id, rows)


async def get_user(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow | None:
    """The person's record in the department, or None if not a member there (or removed)."""
    stmt = sa.select(*_USER_COLUMNS).where(_member(department_id, account_id), _CURRENT)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        return None
    return (await _users(conn, department_id, [row]))[0]
