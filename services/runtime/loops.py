"""The one loop every background worker runs: work, wait, and outlive failures.

The outbox relay, the email delivery, the import worker and the invitation sweep
each do a step of work over and over for the life of the service. A step that
fails (the database or broker is away) is retried after a growing delay, so an
outage is waited out without a storm of attempts; a step that finds nothing to
do waits for ``idle`` (a poll interval, or a wake-up) before the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

from .logging import get_logger

log = get_logger(__name__)

FIRST_RETRY_S = 0.2
MAX_RETRY_S = 5.0


async def keep_running(
    step: Callable[[], Awaitable[bool | None]],
    *,
    what: str,
    idle: Callable[[], Awaitable[object]] | None = None,
    recover: Callable[[], Awaitable[object]] | None = None,
) -> NoReturn:
    """Run ``step`` until cancelled.

    ``step`` returns True when it did something (run it again at once) and False or
    None when there was nothing to do (then ``idle`` is awaited first). A step may
    also run for as long as it can (a relay serving its leadership) and return or
    fail only when that ends. After a failure, ``recover`` (close a producer,
    recreate topics) runs, then the loop waits ``FIRST_RETRY_S``, doubling up to
    ``MAX_RETRY_S`` while failures continue.
    """
    delay = FIRST_RETRY_S
    while True:
        try:
            busy = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{what} failed", error=repr(exc), retry_in=delay)
            if recover is not None:
                try:
                    await recover()
                except asyncio.CancelledError:
                    raise
                except Exception as again:
                    log.warning(f"{what}: recovering failed too", error=repr(again))
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            continue
        delay = FIRST_RETRY_S
        if not busy and idle is not None:
            await idle()


async def sleep_for(seconds: float) -> None:
    """An ``idle`` that waits a fixed interval."""
    await asyncio.sleep(seconds)
