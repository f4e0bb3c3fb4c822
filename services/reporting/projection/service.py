"""The projection's use case: fold membership events into the read model.

Runs inside the consumer's unit of work (whole runs at once on its fast path, one
message at a time when a batch is retried), so it needs no engine of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.membership import GroupDeleted
from prodigy_users.runtime.uow import UnitOfWork

from ..activity import store as activity_store
from ..activity.rules import from_history
from . import store
from .rules import (
    Event,
    Projection,
    count_changes,
    member_keys,
    split_at_group_deletions,
    standing,
)


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
        loaded = await store.load_members(conn, member_keys(run))
        # Before the fold, which changes the loaded rows in place.
        before = {key: standing(row) for key, row in loaded.items()}
        fold = Projection(loaded)
        for event in run:
            fold.apply(event)
        await store.upsert_departments(conn, fold.departments)
        await store.upsert_groups(conn, fold.groups)
        await store.save_members(conn, fold.changed_members())
        await store.delete_members(conn, fold.deleted)
        after = {key: standing(fold.members.get(key)) for key in fold.dirty}
        await store.add_counts(conn, count_changes(before, after))
        await store.add_history(conn, fold.history)
        await _add_activity(conn, run, fold.history)
        # Last: the merged account's entries, this run's too, are the kept account's.
        for department_id, merged, kept in fold.merges:
            await store.move_history(conn, department_id, merged, kept)
            await activity_store.move_subject(conn, department_id, merged, kept)


async def _add_activity(
    conn: AsyncConnection, run: Sequence[Event], recorded: Sequence[Any]
) -> None:
    """The department's activity log: a row per history entry the run recorded, with
    who made the change (its event's actor)."""
    payloads = {e.event_id: e.payload for e in run}
    await activity_store.add(conn, from_history(recorded, payloads))


async def project_one(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    """One membership event (the consumer's per-message path): a run of one."""
    await project(uow.conn, [(envelope, payload)])
