"""Reporting's use cases: project membership events, answer the users table and record."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.membership import GroupDeleted
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import HistoryEntry, UserRow
from .projection import Event, Projection, member_keys, split_at_group_deletions


async def project(conn: AsyncConnection, messages: Sequence[tuple[RawEnvelope, Any]]) -> None:
    """Apply a run of membership events to the read model, in order, in few statements.

    Rows the run touches are read once (locked), folded in memory, written back once.
    """
    events = [Event(e.event_id, e.type, e.occurred_at, payload) for e, payload in messages]
    for run in split_at_group_deletions(events):
        first = run[0].payload
        if isinstance(first, GroupDeleted):
            # Out of every row of the department (removed people's too), then gone.
            await store.leave_group(conn, first.department_id, first.group_id, run[0].occurred_at)
            await store.delete_group(conn, first.group_id)
            continue
        fold = Projection(await store.load_members(conn, member_keys(run)))
        for event in run:
            fold.apply(event)
        await store.upsert_departments(conn, fold.departments)
        await store.upsert_groups(conn, fold.groups)
        await store.save_members(conn, fold.changed_members())
        await store.add_history(conn, fold.history)


async def project_one(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    """One membership event (the consumer's per-message path): a run of one."""
    await project(uow.conn, [(envelope, payload)])


async def role_of(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The caller's role in the department, as reporting has heard it (None once removed)."""
    async with engine.connect() as conn:
        return await store.role_of(conn, department_id, account_id)


async def user_record(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> tuple[UserRow, list[HistoryEntry]] | None:
    """The person's record and history in the department, or None if not a member there."""
    async with engine.connect() as conn:
        row = await store.get_user(conn, department_id, account_id)
        if row is None:
            return None
        return row, await store.history_of(conn, department_id, account_id)
