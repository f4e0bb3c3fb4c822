"""Reporting's part of an operator's merge of two accounts (``identity.account_merged``):
the merged account's training (plans, transcript, revocations, in every department)
becomes the kept account's, and a training event that names the merged account later
(the training system's view may lag) is recorded under the kept one.

The users table, the record's history and the activity log follow membership's
``member_merged`` (the projection); this is the training, which has no order with
membership's events. Every step is safe to repeat.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountMerged
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted
from prodigy_users.runtime.uow import UnitOfWork

from .tables import completions, merged_accounts, plans, revocations

TrainingEvent = TypeVar("TrainingEvent", CourseAssigned, CourseCompleted, CertificateRevoked)


async def kept_account(conn: AsyncConnection, account_id: uuid.UUID) -> uuid.UUID | None:
    """The account ``account_id`` was merged into, if it was."""
    return await conn.scalar(
        sa.select(merged_accounts.c.kept_account_id).where(
            merged_accounts.c.merged_account_id == account_id
        )
    )


async def as_kept(conn: AsyncConnection, event: TrainingEvent) -> TrainingEvent:
    """The training event as the kept account's, if it names a merged account."""
    kept = await kept_account(conn, event.account_id)
    return event if kept is None else event.model_copy(update={"account_id": kept})


def _copied_to(table: sa.Table, merged: uuid.UUID, kept: uuid.UUID) -> Insert:
    """An insert of the merged account's rows of ``table`` as the kept account's."""
    cols = [c for c in table.c if c.name != "account_id"]
    moved = sa.select(*cols, sa.literal(kept, sa.UUID()).label("account_id")).where(
        table.c.account_id == merged
    )
    return pg_insert(table).from_select([*(c.name for c in cols), "account_id"], moved)


async def _move_plans(conn: AsyncConnection, merged: uuid.UUID, kept: uuid.UUID) -> None:
    # A course on both plans: the later assignment stands, as for a repeated event.
    stmt = _copied_to(plans, merged, kept)
    changed = ("title", "plan", "due_on", "assigned_at", "updated_at")
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[plans.c.department_id, plans.c.account_id, plans.c.course_id],
            set_={c: stmt.excluded[c] for c in changed},
            where=plans.c.updated_at < stmt.excluded.updated_at,
        )
    )
    await conn.execute(sa.delete(plans).where(plans.c.account_id == merged))


async def _move_rows(
    conn: AsyncConnection, table: sa.Table, merged: uuid.UUID, kept: uuid.UUID
) -> None:
    # Certificates are the training system's, one per completion: the kept account's
    # transcript gets every one of both (a course completed under both stays twice).
    await conn.execute(_copied_to(table, merged, kept).on_conflict_do_nothing())
    await conn.execute(sa.delete(table).where(table.c.account_id == merged))


async def on_account_merged(uow: UnitOfWork, env: RawEnvelope, event: AccountMerged) -> None:
    """Remember the merge, and move the merged account's training to the kept one."""
    merged, kept = event.merged_account_id, event.kept_account_id
    await uow.conn.execute(
        pg_insert(merged_accounts)
        .values(merged_account_id=merged, kept_account_id=kept, merged_at=event.merged_at)
        .on_conflict_do_nothing()
    )
    await _move_plans(uow.conn, merged, kept)
    await _move_rows(uow.conn, completions, merged, kept)
    await _move_rows(uow.conn, revocations, merged, kept)
