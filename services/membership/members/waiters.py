"""Lets an HTTP request wait briefly for the outcome of the operation it started.

The answer from identity may be applied by any membership process (the consumer group
gives each its partitions), so the one that records an operation's outcome announces
it on a PostgreSQL channel (NOTIFY, delivered at commit), and every process listens:
the waiting request wakes wherever it is. A slow poll stays as the net for a
listening session that was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.db import listen, notify
from prodigy_users.runtime.uow import UnitOfWork

CHANNEL = "membership_operations"
# How often a waiting request looks at its operation without being woken.
POLL_S = 1.0


async def announce(uow: UnitOfWork, operation_id: uuid.UUID) -> None:
    """Tell every process, once this transaction commits, that the operation moved."""
    await notify(uow.conn, CHANNEL, str(operation_id))


class Waiters:
    """The requests of this process waiting for their operation, woken by ``notify``."""

    def __init__(self) -> None:
        self._events: dict[uuid.UUID, asyncio.Event] = {}

    def notify(self, operation_id: uuid.UUID) -> None:
        """The operation moved (its transaction committed, in any process)."""
        event = self._events.get(operation_id)
        if event is not None:
            event.set()

    def heard(self, payload: str) -> None:
        """A payload from the channel: an operation id."""
        with contextlib.suppress(ValueError):
            self.notify(uuid.UUID(payload))

    async def listen(self, engine: AsyncEngine) -> NoReturn:
        """Hear every process's announcements for the life of the service."""
        await listen(engine, CHANNEL, self.heard, what="listening for operations")

    async def wait(
        self,
        operation_id: uuid.UUID,
        done: Callable[[], Awaitable[bool]],
        timeout: float,
        poll: float = POLL_S,
    ) -> bool:
        """Wait until ``done()`` or ``timeout``; True if done."""
        event = self._events.setdefault(operation_id, asyncio.Event())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if await done():
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(poll, remaining))
                # A move that is not the end (awaiting confirmation) wakes us once.
                event.clear()
        finally:
            self._events.pop(operation_id, None)
