"""The activity log's writes (by the projection) and reads: a page of a view, newest
first, and the names of the accounts a page mentions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import activity, users
from .rules import ActivityRow, ActivityView

_COLUMNS = tuple(f.name for f in fields(ActivityRow))


async def add(conn: AsyncConnection, rows: Sequence[ActivityRow]) -> None:
    """Record changes (each event once: a replay or a redelivery adds nothing)."""
    if not rows:
        return
    await conn.execute(
        pg_insert(activity).on_conflict_do_nothing(index_elements=[activity.c.event_id]),
        [{c: getattr(r, c) for c in _COLUMNS} for r in rows],
    )


async def move_subject(
    conn: AsyncConnection, department_id: uuid.UUID, merged: uuid.UUID, kept: uuid.UUID
) -> None:
    """Changes made to a merged account in the department are the kept account's."""
    await conn.execute(
        sa.update(activity)
        .where(activity.c.department_id == department_id, activity.c.subject_id == merged)
        .values(subject_id=kept)
    )


def _where(view: ActivityView) -> list[sa.ColumnElement[bool]]:
    f = view.filters
    conditions = [activity.c.department_id == view.department_id]
    if f.person is not None:
        conditions.append(activity.c.subject_id == f.person)
    if f.actions:
        conditions.append(activity.c.action.in_(sorted(f.actions)))
    if f.since is not None:
        conditions.append(activity.c.occurred_at >= f.since)
    if f.until is not None:
        conditions.append(activity.c.occurred_at < f.until)
    return conditions


async def page(
    conn: AsyncConnection,
    view: ActivityView,
    count: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[ActivityRow]:
    """Up to ``count`` changes of the view, newest first, after the change ``after``."""
    key = sa.tuple_(activity.c.occurred_at, activity.c.event_id)
    stmt = sa.select(*(activity.c[c] for c in _COLUMNS)).where(*_where(view))
    if after is not None:
        at, event_id = after
        stmt = stmt.where(
            key
            < sa.tuple_(
                sa.literal(at, sa.DateTime(timezone=True)),
                sa.literal(event_id, UUID(as_uuid=True)),
            )
        )
    stmt = stmt.order_by(activity.c.occurred_at.desc(), activity.c.event_id.desc()).limit(count)
    rows = (await conn.execute(stmt)).mappings()
    return [ActivityRow(**{c: _value(c, r[c]) for c in _COLUMNS}) for r in rows]


def _value(column: str, value: Any) -> Any:
    return dict(value or {}) if column == "details" else value


async def names(
    conn: AsyncConnection, department_id: uuid.UUID, accounts: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The names reporting knows for these accounts in this department (removed people's
    rows stay, so a past admin keeps their name). Never another department's: an
    account the department never had stays unnamed rather than leak where it is."""
    wanted = set(accounts)
    if not wanted:
        return {}
    rows = await conn.execute(
        sa.select(users.c.account_id, users.c.name).where(
            users.c.department_id == department_id, users.c.account_id.in_(wanted)
        )
    )
    return {r.account_id: r.name for r in rows}


async def actors(
    conn: AsyncConnection, event_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, uuid.UUID | None]]:
    """Who made each of these changes: (kind, account id) by event id (the record's
    history, whose entries share their event ids with the log)."""
    wanted = list(set(event_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        sa.select(activity.c.event_id, activity.c.actor_kind, activity.c.actor_id).where(
            activity.c.event_id.in_(wanted)
        )
    )
    return {r.event_id: (r.actor_kind, r.actor_id) for r in rows}
