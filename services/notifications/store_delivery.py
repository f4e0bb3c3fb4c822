"""The delivery queue's queries: claim due emails under a lease, record what became
of them, many at a time.

Every write about a claimed email is fenced by its ``attempts`` (incremented by the
claim): a worker whose lease ran out, and whose email another worker claimed since,
matches no row and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import DUE_STATUSES, WORKER_LOCK_NAMESPACE, Lease, OutgoingEmail
from .store import EMAILS_CHANNEL, department_names
from .tables import emails


async def claim_due(
    conn: AsyncConnection, *, limit: int, lease: timedelta, holder: int | None = None
) -> list[OutgoingEmail]:
    """Take up to ``limit`` due emails: mark them ``sending`` under a lease held by
    worker ``holder``, count the attempt.

    ``SKIP LOCKED`` lets replicas claim side by side without waiting on each other.
    """
    due = (
        sa.select(emails.c.id)
        .where(emails.c.status.in_(DUE_STATUSES), emails.c.next_attempt_at <= sa.func.now())
        .order_by(emails.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return await _take(conn, emails.c.id.in_(due), lease, holder)


async def take_over(
    conn: AsyncConnection,
    leases: Sequence[tuple[uuid.UUID, int]],
    *,
    lease: timedelta,
    holder: int | None,
) -> list[OutgoingEmail]:
    """Claim these (email id, attempt) from a dead worker; those still as it left them."""
    if not leases:
        return []
    values = _unnest(
        id=([i for i, _ in leases], UUID(as_uuid=True)),
        attempts=([a for _, a in leases], sa.Integer),
    )
    # A worker that took them over first (or the holder recording them) changed the
    # attempt or the status: those match no row.
    mine = sa.select(values.c.id).where(_held(values))
    return await _take(conn, emails.c.id.in_(mine), lease, holder)


async def _take(
    conn: AsyncConnection,
    which: sa.ColumnElement[bool],
    lease: timedelta,
    holder: int | None,
) -> list[OutgoingEmail]:
    rows = (
        await conn.execute(
            sa.update(emails)
            .where(which)
            .values(
                status="sending",
                attempts=emails.c.attempts + 1,
                next_attempt_at=sa.func.now() + lease,
                last_attempt_at=sa.func.now(),
                lease_holder=holder,
            )
            .returning(*emails.c)
        )
    ).all()
    if not rows:
        return []
    names = await department_names(conn, {r.department_id for r in rows if r.department_id})
    return [
        OutgoingEmail(
            id=r.id,
            source_event_id=r.source_event_id,
            template=r.template,
            to=r.recipient,
            recipient_name=r.recipient_name,
            department_id=r.department_id,
            department_name=names.get(r.department_id) if r.department_id else None,
            account_id=r.account_id,
            sealed_token=r.sealed_token,
            link_expires_at=r.link_expires_at,
            correlation_id=r.correlation_id,
            attempts=r.attempts,
            details={str(k): str(v) for k, v in (r.details or {}).items()},
            queued_at=r.created_at,
        )
        # Oldest first, as they fell due (RETURNING keeps no order).
        for r in sorted(rows, key=lambda r: r.created_at)
    ]


_LEASES = sa.text(
    """
    SELECT e.id, e.attempts, e.lease_holder, e.last_attempt_at, e.next_attempt_at,
           EXISTS (
               SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted AND l.database = d.oid
                 AND l.classid = CAST(:namespace AS oid)
                 AND l.objid = CAST(e.lease_holder AS oid) AND l.objsubid = 2
           ) AS alive
    FROM emails e, (SELECT oid FROM pg_database WHERE datname = current_database()) d
    WHERE e.status = 'sending'
    """
)


async def leases(conn: AsyncConnection) -> tuple[list[Lease], datetime, datetime]:
    """Every lease in force, whether its holder lives; the database's clock, and when
    the database (re)started (a restart drops every worker's lock at once)."""
    now, started = (
        await conn.execute(sa.select(sa.func.now(), sa.func.pg_postmaster_start_time()))
    ).one()
    rows = await conn.execute(_LEASES, {"namespace": WORKER_LOCK_NAMESPACE})
    found = [
        Lease(
            email_id=r.id,
            attempts=r.attempts,
            holder=r.lease_holder,
            claimed_at=r.last_attempt_at,
            ends_at=r.next_attempt_at,
            holder_alive=r.alive,
        )
        for r in rows
    ]
    return found, now, started


async def hold_worker_id(conn: AsyncConnection, worker_id: int) -> bool:
    """Take this worker id's session lock on ``conn`` (held while the session lives);
    False if another worker has it."""
    taken = await conn.scalar(
        sa.select(sa.func.pg_try_advisory_lock(WORKER_LOCK_NAMESPACE, worker_id))
    )
    return bool(taken)


def _held(values: sa.Subquery) -> sa.ColumnElement[bool]:
    # The lease is ours only while the row is still ``sending`` for our attempt.
    return sa.and_(
        emails.c.id == values.c.id,
        emails.c.status == "sending",
        emails.c.attempts == values.c.attempts,
    )


def _unnest(**columns: tuple[Sequence[Any], Any]) -> sa.Subquery:
    """``SELECT unnest(:a) AS a, unnest(:b) AS b ...``: a table of values from arrays."""
    return sa.select(
        *(
            sa.func.unnest(sa.literal(list(values), ARRAY(kind))).label(name)
            for name, (values, kind) in columns.items()
        )
    ).subquery("v")


async def mark_sent(
    conn: AsyncConnection, held: Sequence[tuple[uuid.UUID, int]]
) -> dict[uuid.UUID, datetime]:
    """Record these (email id, attempt) as sent; ``sent_at`` of each whose lease held."""
    if not held:
        return {}
    values = _unnest(
        id=([i for i, _ in held], UUID(as_uuid=True)), attempts=([a for _, a in held], sa.Integer)
    )
    rows = await conn.execute(
        sa.update(emails)
        .where(_held(values))
        .values(status="sent", sent_at=sa.func.now(), sealed_token=None, last_error=None)
        .returning(emails.c.id, emails.c.sent_at)
    )
    return {r.id: r.sent_at for r in rows}


async def mark_retrying(
    conn: AsyncConnection, held: Sequence[tuple[uuid.UUID, int, timedelta, str]]
) -> set[uuid.UUID]:
    """Schedule the next attempt of each (id, attempt, delay, error); those whose lease held."""
    if not held:
        return set()
    values = _unnest(
        id=([h[0] for h in held], UUID(as_uuid=True)),
        attempts=([h[1] for h in held], sa.Integer),
        delay_s=([h[2].total_seconds() for h in held], sa.Float),
        error=([h[3] for h in held], sa.Text),
    )
    rows = await conn.execute(
        sa.update(emails)
        .where(_held(values))
        .values(
            status="retrying",
            next_attempt_at=sa.func.now()
            + sa.func.make_interval(0, 0, 0, 0, 0, 0, values.c.delay_s),
            last_error=values.c.error,
        )
        .returning(emails.c.id)
    )
    return set(rows.scalars())


async def mark_failed(
    conn: AsyncConnection, held: Sequence[tuple[uuid.UUID, int, str]]
) -> set[uuid.UUID]:
    """Give up on each (id, attempt, error); those whose lease held."""
    if not held:
        return set()
    values = _unnest(
        id=([h[0] for h in held], UUID(as_uuid=True)),
        attempts=([h[1] for h in held], sa.Integer),
        error=([h[2] for h in held], sa.Text),
    )
    rows = await conn.execute(
        sa.update(emails)
        .where(_held(values))
        .values(status="failed", last_error=values.c.error, sealed_token=None)
        .returning(emails.c.id)
    )
    return set(rows.scalars())


async def release(conn: AsyncConnection, held: Sequence[tuple[uuid.UUID, int]]) -> int:
    """Hand back claimed emails that were never tried: due now, the attempt uncounted."""
    if not held:
        return 0
    values = _unnest(
        id=([i for i, _ in held], UUID(as_uuid=True)), attempts=([a for _, a in held], sa.Integer)
    )
    rows = await conn.execute(
        sa.update(emails)
        .where(_held(values))
        .values(
            status=sa.case((emails.c.attempts > 1, "retrying"), else_="pending"),
            attempts=emails.c.attempts - 1,
            next_attempt_at=sa.func.now(),
        )
        .returning(emails.c.id)
    )
    return len(rows.all())


async def retry_waiting_now(conn: AsyncConnection) -> int:
    """Make every email waiting out a retry's backoff due now, and wake every delivery
    worker (NOTIFY, delivered at commit); how many there were."""
    rows = await conn.execute(
        sa.update(emails)
        .where(emails.c.status == "retrying", emails.c.next_attempt_at > sa.func.now())
        .values(next_attempt_at=sa.func.now())
        .returning(emails.c.id)
    )
    await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return len(rows.all())


async def seconds_until_next_due(conn: AsyncConnection) -> float | None:
    """How long until the earliest email falls due (0 if one is due now), None if none."""
    value = await conn.scalar(
        sa.select(sa.extract("epoch", sa.func.min(emails.c.next_attempt_at) - sa.func.now())).where(
            emails.c.status.in_(DUE_STATUSES)
        )
    )
    return None if value is None else max(float(value), 0.0)
