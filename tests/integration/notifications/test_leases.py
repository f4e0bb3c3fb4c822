"""Leases on a real PostgreSQL: a worker's lease is safe while its session lock lives,
and taken over by the next claim the moment its session is gone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.notifications import service, store_delivery
from prodigy_users.notifications.tables import emails

pytestmark = pytest.mark.timeout(120)

LEASE = timedelta(seconds=120)


async def queue(engine: AsyncEngine, n: int) -> set[uuid.UUID]:
    """``n`` emails with nothing to open (no token), due now; their ids."""
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "source_event_id": uuid.uuid4(),
            "template": "welcome_joined",
            "recipient": f"lease{i}-{uuid.uuid4().hex[:6]}@example.org",
            "recipient_name": "Lease Person",
        }
        for i in range(n)
    ]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(emails), rows)
    return {r["id"] for r in rows}


async def row(engine: AsyncEngine, email_id: uuid.UUID) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        return tuple(
            (
                await conn.execute(
                    sa.select(emails.c.status, emails.c.attempts, emails.c.lease_holder).where(
                        emails.c.id == email_id
                    )
                )
            ).one()
        )


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[list[AsyncConnection]]:
    """Worker sessions a test opens; closed (their locks dropped) at its end. Each
    test starts from an empty queue (another test's leases are not its business)."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(emails))
    opened: list[AsyncConnection] = []
    yield opened
    for conn in opened:
        await conn.invalidate()
        await conn.close()


async def worker(
    engine: AsyncEngine, sessions: list[AsyncConnection], worker_id: int
) -> AsyncConnection:
    conn = await engine.connect()
    sessions.append(conn)
    assert await store_delivery.hold_worker_id(conn, worker_id)
    await conn.commit()
    return conn


async def test_a_live_workers_lease_is_left_alone_and_a_dead_ones_taken_over_at_once(
    engine: AsyncEngine, sessions: list[AsyncConnection]
) -> None:
    mine = await queue(engine, 3)
    alive = await worker(engine, sessions, 101)
    taken = await service.claim_due(alive, limit=3, lease=LEASE, holder=101)
    assert {e.id for e in taken} == mine
    other = await worker(engine, sessions, 102)
    # The id is one worker's: a second cannot hold it while the first lives.
    assert not await store_delivery.hold_worker_id(other, 101)
    await other.commit()

    assert await service.claim_due(other, limit=10, lease=LEASE, holder=102) == []
    for email_id in mine:
        assert await row(engine, email_id) == ("sending", 1, 101)

    # The first worker dies: PostgreSQL drops its session, and its lock with it.
    await alive.invalidate()
    recovered = await service.claim_due(other, limit=10, lease=LEASE, holder=102)
    assert {e.id for e in recovered} == mine
    assert {e.attempts for e in recovered} == {2}
    for email_id in mine:
        assert await row(engine, email_id) == ("sending", 2, 102)

    # What the dead worker might still write about its attempt changes nothing.
    async with engine.begin() as conn:
        assert await store_delivery.mark_sent(conn, [(i, 1) for i in mine]) == {}
    # And nothing is taken over twice while the new holder lives.
    third = await worker(engine, sessions, 103)
    assert await service.claim_due(third, limit=10, lease=LEASE, holder=103) == []


async def test_dead_workers_leases_come_before_the_backlog(
    engine: AsyncEngine, sessions: list[AsyncConnection]
) -> None:
    first = await queue(engine, 2)
    dying = await worker(engine, sessions, 201)
    held = await service.claim_due(dying, limit=2, lease=LEASE, holder=201)
    assert {e.id for e in held} == first
    backlog = await queue(engine, 5)
    await dying.invalidate()

    survivor = await worker(engine, sessions, 202)
    claimed = await service.claim_due(survivor, limit=3, lease=LEASE, holder=202)
    ids = {e.id for e in claimed}
    assert first <= ids, "the emails in flight at the death go first"
    assert len(ids & backlog) == 1
