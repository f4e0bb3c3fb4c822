"""Lets an HTTP request wait briefly for the outcome of the operation it started."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable


class Waiters:
    """In-process wake-ups, with polling for outcomes recorded by another replica."""

    def __init__(self) -> None:
        self._events: dict[uuid.UUID, asyncio.Event] = {}

    def notify(self, operation_id: uuid.UUID) -> None:
        """The operation finished (called after its transaction commits)."""
        event = self._events.get(operation_id)
        if event is not None:
            event.set()

    async def wait(
        self,
        operation_id: uuid.UUID,
        done: Callable[[], Awaitable[bool]],
        timeout: float,
        poll: float = 0.25,
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
        finally:
            self._events.pop(operation_id, None)
