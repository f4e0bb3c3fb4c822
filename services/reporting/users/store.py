"""The users table's reads (a page, the export's stream) and the indexes that serve them.

Every sort is a keyset: ``(department, key..., account_id)`` has an index, the page
condition is one row comparison on the same expressions, so a page costs an index
range scan however deep it is. The expressions below are written without bound
parameters (constants are literal SQL): an expression index is only used when the
query's expression is the very same, and a parameter is not a constant to the
planner of a prepared statement.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from . import store
from .domain import (
    ROLES,
    SORT_KEY_KINDS,
    GroupNames,
    KeyKind,
    Sort,
    SortColumn,
    UserRow,
    UsersView,
    like_pattern,
)
from .export import EXPORT_COLUMNS

users = store.users


def _sql(text: str) -> sa.TextClause:
    # Literal SQL, not a column: an index finds its table from the columns it names.
    return sa.text(text)


_CURRENT = users.c.removed_at.is_(None)
# Emails and employee IDs sort in the database's collation (the embedded one is "C");
# names sort by ``sort_name``, folded in Python and compared bytewise.
_EMAIL = sa.func.lower(users.c.email)
_EMPLOYEE_ID = sa.func.lower(sa.func.coalesce(users.c.employee_id, _sql("''")))
_NO_EMPLOYEE_ID = users.c.employee_id.is_(None)
_HAS_EMPLOYEE_ID = users.c.employee_id.is_not(None)
# admin, officer, member (then anything else): by what the role may do, not
# alphabetically. Written as functions, not CASE: Alembic compares index expressions
# as PostgreSQL prints them, and it prints a CASE over several lines.
_ROLE_RANK = sa.func.coalesce(
    sa.func.array_position(_sql("'{" + ",".join(ROLES) + "}'::text[]"), users.c.role),
    _sql(str(len(ROLES) + 1)),
)
# What ``q`` is looked for in: the folded name, the email and the employee ID, apart
# by a control character a search term never contains (``domain.search_term``).
_SEARCH = (
    users.c.sort_name.op("||")(_sql("chr(31)"))
    .op("||")(_EMAIL)
    .op("||")(_sql("chr(31)"))
    .op("||")(_EMPLOYEE_ID)
)

# The key of each sort before the tie-breaking account id (kinds in ``domain.SORT_KEY_KINDS``).
_ASCENDING: dict[SortColumn, tuple[sa.ColumnElement[Any], ...]] = {
    "name": (users.c.sort_name,),
    "email": (_EMAIL,),
    "role": (_ROLE_RANK, users.c.sort_name),
    "status": (users.c.status, users.c.sort_name),
    "employee_id": (_NO_EMPLOYEE_ID, _EMPLOYEE_ID),
    "joined_at": (users.c.joined_at,),
    "updated_at": (users.c.updated_at,),
}
# Descending walks the same indexes backwards, except that rows without an employee
# ID stay last: its first key flips (has an ID first) and it has an index of its own.
_DESCENDING: dict[SortColumn, tuple[sa.ColumnElement[Any], ...]] = {
    **_ASCENDING,
    "employee_id": (_HAS_EMPLOYEE_ID, _EMPLOYEE_ID),
}

# The indexes behind the sorts (``users_by_name`` is store's) and the search.
sa.Index("users_by_email", users.c.department_id, _EMAIL, users.c.account_id)
sa.Index("users_by_role", users.c.department_id, _ROLE_RANK, users.c.sort_name, users.c.account_id)
sa.Index(
    "users_by_status", users.c.department_id, users.c.status, users.c.sort_name, users.c.account_id
)
sa.Index(
    "users_by_employee_id",
    users.c.department_id,
    _NO_EMPLOYEE_ID,
    _EMPLOYEE_ID,
    users.c.account_id,
)
sa.Index(
    "users_by_employee_id_desc",
    users.c.department_id,
    _HAS_EMPLOYEE_ID,
    _EMPLOYEE_ID,
    users.c.account_id,
)
sa.Index("users_by_joined_at", users.c.department_id, users.c.joined_at, users.c.account_id)
sa.Index("users_by_updated_at", users.c.department_id, users.c.updated_at, users.c.account_id)
sa.Index(
    "users_search",
    _SEARCH.label("search"),
    postgresql_using="gin",
    postgresql_ops={"search": "gin_trgm_ops"},
)

_BIND_TYPES: dict[KeyKind, sa.types.TypeEngine[Any]] = {
    "text": sa.Text(),
    "int": sa.Integer(),
    "bool": sa.Boolean(),
    "time": sa.DateTime(timezone=True),
    "uuid": UUID(as_uuid=True),
}

_ROW = store.USER_COLUMNS


def sort_keys(sort: Sort) -> tuple[sa.ColumnElement[Any], ...]:
    """The SQL of a sort's key, the tie-breaking account id last."""
    keys = (_DESCENDING if sort.descending else _ASCENDING)[sort.column]
    return (*keys, users.c.account_id)


def _where(view: UsersView) -> list[sa.ColumnElement[bool]]:
    filters = view.filters
    where = [users.c.department_id == view.department_id, _CURRENT]
    if filters.roles:
        # By rank, the role index's own expression: one role sorted by name (or within
        # the role sort) is then a range of that index, not a filtered walk.
        where.append(_ROLE_RANK.in_(sorted(ROLES.index(r) + 1 for r in filters.roles)))
    if filters.statuses:
        where.append(users.c.status.in_(sorted(filters.statuses)))
    if filters.groups:
        wanted = sa.cast(sorted(filters.groups), sa.ARRAY(UUID(as_uuid=True)))
        where.append(users.c.groups.overlap(wanted))
    if filters.search:
        where.append(_SEARCH.like(like_pattern(filters.search)))
    return where


def _ordered(stmt: sa.Select[Any], view: UsersView) -> sa.Select[Any]:
    keys = sort_keys(view.sort)
    return stmt.order_by(*(k.desc() if view.sort.descending else k.asc() for k in keys))


def _after(view: UsersView, keys: Sequence[Any]) -> sa.ColumnElement[bool]:
    kinds: tuple[KeyKind, ...] = (*SORT_KEY_KINDS[view.sort.column], "uuid")
    values = [sa.literal(v, _BIND_TYPES[k]) for k, v in zip(kinds, keys, strict=True)]
    mine, theirs = sa.tuple_(*sort_keys(view.sort)), sa.tuple_(*values)
    return mine < theirs if view.sort.descending else mine > theirs


def user_row(row: sa.RowMapping, groups: GroupNames) -> UserRow:
    """A selected row as the domain's ``UserRow``, its groups named."""
    return UserRow(
        department_id=row["department_id"],
        account_id=row["account_id"],
        name=row["name"],
        sort_name=row["sort_name"],
        email=row["email"],
        role=row["role"],
        status=row["status"],
        employee_id=row["employee_id"],
        groups=groups.refs(row["groups"]),
        joined_at=row["joined_at"],
        updated_at=row["updated_at"],
    )


async def department_groups(
    conn: AsyncConnection, department_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """The department's groups by id (a department has a handful, not thousands)."""
    rows = await conn.execute(
        sa.select(store.groups.c.group_id, store.groups.c.name).where(
            store.groups.c.department_id == department_id
        )
    )
    return {r.group_id: r.name for r in rows}


async def department_name(conn: AsyncConnection, department_id: uuid.UUID) -> str | None:
    """The department's name as reporting knows it (None before its event arrived)."""
    name: str | None = (
        await conn.execute(
            sa.select(store.departments.c.name).where(
                store.departments.c.department_id == department_id
            )
        )
    ).scalar_one_or_none()
    return name


async def page(
    conn: AsyncConnection,
    view: UsersView,
    count: int,
    after: Sequence[Any] | None,
    groups: GroupNames,
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
    return [(user_row(r, groups), (*(r[n] for n in labels), r["account_id"])) for r in rows]


_EXPORTED = tuple(users.c[name] for name in EXPORT_COLUMNS)
_TIMES = ("joined_at", "updated_at")
# A CSV's times as PostgreSQL writes them (UTC, to the second): a third of the Python
# work of a CSV export was decoding and formatting them.
_EXPORTED_AS_TEXT = tuple(
    sa.func.to_char(sa.func.timezone(_sql("'UTC'"), c), _sql("'YYYY-MM-DD HH24:MI:SS'"))
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
        groups = GroupNames({r["group_id"]: r["name"] for r in rows})
        cursor = await driver.cursor(str(compiled), *args)
        while records := await cursor.fetch(chunk):
            yield groups, records
