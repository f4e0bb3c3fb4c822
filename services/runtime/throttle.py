"""Throttling the public calls that take a secret or make work for anyone who asks.

A service that throttles (``ServiceSpec(throttled=True)``, and the
``throttle_counts`` table in its database: ``throttle_store``) has a ``Throttle`` on
``app.state.throttle``. Each throttled route declares a guard: a dependency with
``yield`` that wraps the call in ``attempt``, naming the keys it charges (an
account's email key, the client address, a link's token) and which errors count as
failures. The guard refuses a locked key with ``429 too-many-attempts`` and
``Retry-After`` before the route runs; the rules are ``throttle_rules``.

Who the client is comes from the connection, or from ``X-Forwarded-For`` when the
connection comes from a trusted proxy (``PRODIGY_TRUSTED_PROXIES``: the ingress
controller, the console), read as ``throttle_rules.client_ip`` says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import NoReturn

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from .logging import get_logger
from .loops import keep_running, sleep_for
from .throttle_rules import IPNetwork, Limit, address_key, client_ip, key_of
from .throttle_store import Charge, ThrottleStore

log = get_logger(__name__)

PURGE_EVERY_S = 300.0

Keys = Sequence[tuple[Limit, str]]


class Throttle:
    """One service's throttle: its counts (shared by every replica) and its proxies."""

    def __init__(self, engine: AsyncEngine, trusted: Sequence[IPNetwork] = ()) -> None:
        self.store = ThrottleStore(engine)
        self.trusted = tuple(trusted)

    def client(self, request: Request) -> str:
        """The client's address, as a throttling key (an IPv6 client's /64)."""
        peer = request.client.host if request.client else None
        forwarded = request.headers.getlist("x-forwarded-for")
        return address_key(client_ip(peer, forwarded, self.trusted))

    @asynccontextmanager
    async def attempt(
        self, keys: Keys, *, failures: tuple[type[Exception], ...]
    ) -> AsyncIterator[None]:
        """Charge an attempt to every key (``TooManyAttempts`` if one is locked), run
        the call, then settle: an error among ``failures`` keeps the charges; anything
        else takes back the charges of ``failures`` limits, and a success forgets the
        keys of ``forget_on_success`` limits."""
        hashed = [(limit, key_of(limit.name, value)) for limit, value in keys]
        charges = await self.store.admit([(key, limit.budget) for limit, key in hashed])
        by_key = {charge.key: charge for charge in charges}
        settled = [(limit, by_key[key]) for limit, key in hashed]
        try:
            yield
        except failures:
            raise
        except Exception:
            await self._settle(settled, success=False)
            raise
        await self._settle(settled, success=True)

    async def _settle(self, settled: list[tuple[Limit, Charge]], *, success: bool) -> None:
        for limit, charge in settled:
            try:
                if success and limit.forget_on_success:
                    await self.store.forget(charge.key)
                elif limit.charges == "failures":
                    await self.store.take_back(charge)
            except Exception as exc:
                # The answer stands; the key keeps one charge too many until its window ends.
                log.warning("throttle: could not settle an attempt", error=repr(exc))


def throttle_of(request: Request) -> Throttle:
    """The running service's throttle."""
    throttle: Throttle | None = getattr(request.app.state, "throttle", None)
    if throttle is None:
        raise RuntimeError("this service does not throttle: ServiceSpec(throttled=True)")
    return throttle


async def purge_forever(throttle: Throttle) -> NoReturn:
    """Delete counts that stopped mattering, a batch at a time, for the life of the service."""

    async def step() -> bool:
        return await throttle.store.purge() > 0

    await keep_running(step, what="throttle purge", idle=lambda: sleep_for(PURGE_EVERY_S))
