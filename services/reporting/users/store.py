"""The users table's reads: a page of a view, the export's stream, one person's row, a
caller's role, the department's groups and name.

The sort keys and the search text are the expressions ``tables`` indexes (an
expression index only serves the very same expression), so every page is an index
range scan however deep it is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Iterable, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from ..cursor import KeyKind
from ..rules import ROLES, GroupNames, UserRow
from ..tables import (
    CURRENT,
    EMAIL_KEY,
    EMPLOYEE_ID_KEY,
    HAS_EMPLOYEE_ID,
    NO_EMPLOYEE_ID,
    ROLE_RANK,
    SEARCH_TEXT,
    departments,
    groups,
    user_counts,
    users,
)
from .export import EXPORT_COLUMNS
from .rules import SORT_KEY_KINDS, Sort, SortColumn, UsersView, like_pattern

# The key of each sort before the tie-breaking account id (kinds in ``rules.SORT_KEY_KINDS``).
_ASCENDING: dict[SortColumn, tuple[sa.ColumnElement[Any], ...]] = {
    "name": (users.c.sort_name,),
    "email": (EMAIL_KEY,),
    "role": (ROLE_RANK, users.c.sort_name),
    "status": (users.c.status, users.c.sort_name),
    "employee_id": (NO_EMPLOYEE_ID, EMPLOYEE_ID_KEY),
    "joined_at": (users.c.joined_at,),
    "updated_at": (users.c.updated_at,),
}
# Descending walks the same indexes backwards, except that rows without an employee
# ID stay last: its first key flips (has an ID first) and it has an index of its own.
_DESCENDING: dict[SortColumn, tuple[sa.ColumnElement[Any], ...]] = {
    **_ASCENDING,
    "employee_id": (HAS_EMPLOYEE_ID, EMPLOYEE_ID_KEY),
}

_BIND_TYPES: dict[KeyKind, sa.types.TypeEngine[Any]] = {
    "text": sa.Text(),
    "int": sa.Integer(),
    "bool": sa.Boolean(),
    "time": sa.DateTime(timezone=True),
    "uuid": UUID(as_uuid=True),
}

# What a ``UserRow`` is read from (``removed_at`` is not: readers see current rows only).
_ROW = (
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


def _member(department_id: uuid.UUID, account_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(users.c.department_id == department_id, users.c.account_id == account_id)


def sort_keys(sort: Sort) -> tuple[sa.ColumnElement[Any], ...]:
    """The SQL of a sort's key, the tie-breaking account id last."""
    keys = (_DESCENDING if sort.descending else _ASCENDING)[sort.column]
    return (*keys, users.c.account_id)


def _where(view: UsersView) -> list[sa.ColumnElement[bool]]:
    filters = view.filters
    conditions = [users.c.department_id == view.department_id, CURRENT]
    if filters.roles:
        # By rank, the role index's own expression: one role sorted by name (or within
        # the role sort) is then a range of that index, not a filtered walk.
        conditions.append(ROLE_RANK.in_(sorted(ROLES.index(r) + 1 for r in filters.roles)))
    if filters.statuses:
        conditions.append(users.c.status.in_(sorted(filters.statuses)))
    if filters.groups:
        wanted = sa.cast(sorted(filters.groups), sa.ARRAY(UUID(as_uuid=True)))
        conditions.append(users.c.groups.overlap(wanted))
    if filters.search:
        conditions.append(SEARCH_TEXT.like(like_pattern(filters.search)))
    return conditions


def _ordered(stmt: sa.Select[Any], view: UsersView) -> sa.Select[Any]:
    keys = sort_keys(view.sort)
    return stmt.order_by(*(k.desc() if view.sort.descending else k.asc() for k in keys))


def _after(view: UsersView, keys: Sequence[Any]) -> sa.ColumnElement[bool]:
    kinds: tuple[KeyKind, ...] = (*SORT_KEY_KINDS[view.sort.column], "uuid")
    values = [sa.literal(v, _BIND_TYPES[k]) for k, v in zip(kinds, keys, strict=True)]
    mine, theirs = sa.tuple_(*sort_keys(view.sort)), sa.tuple_(*values)
    return mine < theirs if view.sort.descending else mine > theirs


async def department_groups(
    conn: AsyncConnection, department_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """The department's groups by id (a department has a handful, not thousands)."""
    rows = await conn.execute(
        sa.select(groups.c.group_id, groups.c.name).where(groups.c.department_id == department_id)
    )
    return {r.group_id: r.name for r in rows}


async def group_names(
    conn: AsyncConnection, department_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The names of these groups of the department (gone ones left out)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await conn.execute(
        sa.select(groups.c.group_id, groups.c.name).where(
            groups.c.department_id == department_id, groups.c.group_id.in_(wanted)
        )
    )
    return {r.group_id: r.name for r in rows}


async def department_name(conn: AsyncConnection, department_id: uuid.UUID) -> str | None:
    """The department's name as reporting knows it (None before its event arrived)."""
    name: str | None = (
        await conn.execute(
            sa.select(departments.c.name).where(departments.c.department_id == department_id)
        )
    ).scalar_one_or_none()
    return name


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The person's role in the department, or None if not a member (or removed)."""
    row = await conn.execute(
        sa.select(users.c.role).where(_member(department_id, account_id), CURRENT)
    )
    role: str | None = row.scalar_one_or_none()
    return role


async def user(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow | None:
    """The person's row in the department, or None if not a member there (or removed)."""
    stmt = sa.select(*_ROW).where(_member(department_id, account_id), CURRENT)
    found = (await conn.execute(stmt)).mappings().first()
    return None if found is None else UserRow.of(found)


async def page(
    conn: AsyncConnection, view: UsersView, count: int, after: Sequence[Any] | None
) -> list[tuple[UserRow, tuple[Any, ...]]]:
    """Up to ``count`` rows of the view after the sort key ``after``, each with its key."""
    keys = sort_keys(view.sort)[:-1]  # the account id is selected already
    labels = [f"k{i}" for i in range(len(keys))]
    stmt = sa.select(*_ROW, *(k.label(n) for k, n in zip(keys, labels, strict=True))).where(
        *_where(view)
    )
    if after is not None:
        stmt = stmt.where(_after(view, after))
    rows = (await conn.execute(_ordered(stmt, view).limit(count))).mappings()
    return [(UserRow.of(r), (*(r[n] for n in labels), r["account_id"])) for r in rows]


async def kept_counts(conn: AsyncConnection, view: UsersView) -> list[tuple[str, str, int]]:
    """The department's counts of current members per (role, status) that the view keeps
    (``user_counts``: a handful of rows)."""
    stmt = sa.select(user_counts.c.role, user_counts.c.status, user_counts.c.members).where(
        user_counts.c.department_id == view.department_id
    )
    if view.filters.roles:
        stmt = stmt.where(user_counts.c.role.in_(sorted(view.filters.roles)))
    if view.filters.statuses:
        stmt = stmt.where(user_counts.c.status.in_(sorted(view.filters.statuses)))
    return [(r.role, r.status, int(r.members)) for r in await conn.execute(stmt)]


async def count_upto(conn: AsyncConnection, view: UsersView, cap: int) -> int:
    """The view's rows counted one by one, stopping after ``cap`` + 1."""
    found = sa.select(sa.literal(1)).where(*_where(view)).limit(cap + 1).subquery()
    counted: int = (await conn.execute(sa.select(sa.func.count()).select_from(found))).scalar_one()
    return counted


_EXPORTED = tuple(users.c[name] for name in EXPORT_COLUMNS)
_TIMES = ("joined_at", "updated_at")
# A CSV's times as PostgreSQL writes them (UTC, to the second): a third of the Python
# work of a CSV export was decoding and formatting them.
_EXPORTED_AS_TEXT = tuple(
    sa.func.to_char(sa.func.timezone(sa.text("'UTC'"), c), sa.text("'YYYY-MM-DD HH24:MI:SS'"))
    if c.name in _TIMES
    else c
    for c in _EXPORTED
)
_GROUPS_SQL = "SELECT group_id, name FROM groups WHERE department_id = $1"


async def export_records(
    driver: asyncpg.Connection,
    dialect: sa.Dialect,
    view: UsersView,
    chunk: int,
    *,
    times_as_text: bool = False,
) -> AsyncGenerator[tuple[GroupNames, list[asyncpg.Record]], None]:
    """Every row of the view in its order (``EXPORT_COLUMNS``), ``chunk`` at a time through a
    server-side cursor, with the department's groups; all in one read-only snapshot.
    ``times_as_text``: times as UTC ``YYYY-MM-DD hh:mm:ss`` strings.

    On asyncpg directly: the statement is built here like every other, but 100,000 rows
    through SQLAlchemy's result layer take twice as long as the driver alone.
    """
    columns = _EXPORTED_AS_TEXT if times_as_text else _EXPORTED
    stmt = _ordered(sa.select(*columns).where(*_where(view)), view)
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    # The values (UUIDs, a list of UUIDs, ranks, strings) are what asyncpg takes as is.
    args = [compiled.params[name] for name in compiled.positiontup or ()]
    async with driver.transaction(isolation="repeatable_read", readonly=True):
        rows = await driver.fetch(_GROUPS_SQL, view.department_id)
        names = GroupNames({r["group_id"]: r["name"] for r in rows})
        cursor = await driver.cursor(str(compiled), *args)
        while records := await cursor.fetch(chunk):
            yield names, records
