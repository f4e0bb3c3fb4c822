"""Notifications' queries on its tables (``tables``): departments, admins, the email log."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import EmailLogEntry, EmailStatus, LogCursor, MemberKey
from .tables import departments, emails, memberships

WAITING_STATUSES = ("pending", "retrying")

# NOTIFY'd in the transaction that queues an email: delivered at commit, it wakes
# the delivery workers of every replica.
EMAILS_CHANNEL = "notifications_emails"


async def upsert_department(conn: AsyncConnection, department_id: uuid.UUID, name: str) -> None:
    """Remember (or rename) a department."""
    stmt = pg_insert(departments).values(department_id=department_id, name=name)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.department_id],
            set_={"name": stmt.excluded.name, "updated_at": sa.func.now()},
        )
    )


async def upsert_memberships(conn: AsyncConnection, roles: Mapping[MemberKey, str]) -> None:
    """Remember people's roles in departments (one statement for the lot)."""
    if not roles:
        return
    stmt = pg_insert(memberships)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[memberships.c.department_id, memberships.c.account_id],
            set_={"role": stmt.excluded.role, "updated_at": sa.func.now()},
        ),
        [{"department_id": d, "account_id": a, "role": r} for (d, a), r in roles.items()],
    )


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The person's role in the department as kept (admins only), or None."""
    row = await conn.execute(
        sa.select(memberships.c.role).where(
            memberships.c.department_id == department_id,
            memberships.c.account_id == account_id,
        )
    )
    return row.scalar_one_or_none()


async def known_departments(conn: AsyncConnection, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """The departments among ``ids`` whose name we have."""
    if not ids:
        return set()
    rows = await conn.execute(
        sa.select(departments.c.department_id).where(departments.c.department_id.in_(ids))
    )
    return set(rows.scalars())


async def department_names(conn: AsyncConnection, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of the departments we know among ``ids``."""
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(departments.c.department_id, departments.c.name).where(
            departments.c.department_id.in_(ids)
        )
    )
    return {r.department_id: r.name for r in rows}


async def release_held(conn: AsyncConnection, department_id: uuid.UUID) -> int:
    """Make the department's emails that wait for its name due now; how many."""
    released = await conn.execute(
        sa.update(emails)
        .where(
            emails.c.department_id == department_id,
            emails.c.status == "pending",
            emails.c.next_attempt_at > sa.func.now(),
        )
        .values(next_attempt_at=sa.func.now())
        .returning(emails.c.id)
    )
    count = len(released.all())
    if count:
        await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return count


async def delete_memberships(conn: AsyncConnection, keys: Collection[MemberKey]) -> None:
    """Forget people's roles in departments (they were removed)."""
    if not keys:
        return
    await conn.execute(
        sa.delete(memberships).where(
            sa.tuple_(memberships.c.department_id, memberships.c.account_id).in_(list(keys))
        )
    )


async def insert_emails(
    conn: AsyncConnection, rows: list[dict[str, Any]], *, hold: timedelta | None = None
) -> int:
    """Queue emails, skipping any whose (source event, template, recipient) is queued already;
    how many were new. ``hold``: they are due only after this long (``release_held``
    ends the wait). One statement for the lot, and one wake-up for the workers.
    """
    if not rows:
        return 0
    stmt = pg_insert(emails).on_conflict_do_nothing(constraint="emails_source_template_recipient")
    if hold is not None:
        stmt = stmt.values(next_attempt_at=sa.func.now() + hold)
    # Every row names the same columns, so one multi-row INSERT carries them all.
    columns = sorted({c for row in rows for c in row})
    values = [{c: row.get(c) for c in columns} for row in rows]
    result = await conn.execute(stmt.returning(emails.c.id), values)
    inserted = len(result.all())
    if inserted:
        await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return inserted


async def list_emails(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    *,
    statuses: tuple[EmailStatus, ...] = (),
    after: LogCursor | None = None,
    limit: int,
) -> list[EmailLogEntry]:
    """A page of a department's email log, newest first (``after``: past that entry)."""
    query = (
        sa.select(
            emails.c.id,
            emails.c.recipient,
            emails.c.template,
            emails.c.status,
            emails.c.attempts,
            emails.c.created_at,
            emails.c.sent_at,
            emails.c.last_error,
            emails.c.last_attempt_at,
            emails.c.next_attempt_at,
        )
        .where(emails.c.department_id == department_id)
        .order_by(emails.c.created_at.desc(), emails.c.id.desc())
        .limit(limit)
    )
    if statuses:
        query = query.where(emails.c.status.in_(statuses))
    if after is not None:
        query = query.where(
            sa.tuple_(emails.c.created_at, emails.c.id)
            < sa.tuple_(after.created_at, after.email_id)
        )
    return [
        EmailLogEntry(
            id=r.id,
            to=r.recipient,
            template=r.template,
            status=r.status,
            attempts=r.attempts,
            created_at=r.created_at,
            sent_at=r.sent_at,
            last_error=r.last_error,
            last_attempt_at=r.last_attempt_at,
            # While ``sending`` the column is the lease's end, not a planned attempt.
            next_attempt_at=r.next_attempt_at if r.status in WAITING_STATUSES else None,
        )
        for r in await conn.execute(query)
    ]
