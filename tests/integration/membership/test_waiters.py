"""A request waiting for its operation wakes when another process records the outcome:
the announcement travels through PostgreSQL (NOTIFY at commit), not through memory."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.membership.members.waiters import Waiters, announce
from prodigy_users.runtime.uow import UnitOfWork
from tests.support import wait_for


async def announce_committed(engine: AsyncEngine, operation_id: uuid.UUID) -> None:
    """What the process that records an outcome does (its own transaction)."""
    async with UnitOfWork(engine, "membership") as uow:
        await announce(uow, operation_id)
        await uow.commit()


async def test_a_waiter_wakes_on_another_process_announcement(engine: AsyncEngine) -> None:
    waiters = Waiters()  # this process's; the "other process" shares only the database
    heard: set[str] = set()
    original = waiters.heard

    def spy(payload: str) -> None:
        heard.add(payload)
        original(payload)

    waiters.heard = spy  # type: ignore[method-assign]
    listening = asyncio.create_task(waiters.listen(engine))
    try:
        probe = uuid.uuid4()

        async def listener_up() -> bool:
            # A NOTIFY before the LISTEN is lost: announce until one is heard.
            await announce_committed(engine, probe)
            await asyncio.sleep(0.05)
            return str(probe) in heard

        await wait_for(listener_up, timeout=10, interval=0.05, what="the listener up")

        op = uuid.uuid4()
        recorded = False

        async def done() -> bool:
            return recorded

        async def record_elsewhere() -> None:
            nonlocal recorded
            await asyncio.sleep(0.2)  # the other process's consumer, a moment later
            recorded = True  # what its transaction commits, with the announcement
            await announce_committed(engine, op)

        loop = asyncio.get_running_loop()
        started = loop.time()
        elsewhere = asyncio.create_task(record_elsewhere())
        # Polling alone would look again only after 30 s: waking sooner is the channel.
        assert await waiters.wait(op, done, timeout=20.0, poll=30.0)
        await elsewhere
        assert loop.time() - started < 10.0
        assert str(op) in heard
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
