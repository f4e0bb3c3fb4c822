"""How uploads and identity's answers wake the import worker before its next poll."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """Tells the import worker that rows are waiting for it (instead of its next poll)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Rows are waiting."""
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Until ``set`` or ``timeout``; then reset."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
