"""Answer times of requests for a known and an unknown address, paired for comparison.

A request leaves work behind it (for a new address: an account and a confirmation
email; for a known one: a notice to its owner, or nothing), and that work slows
whatever request comes next. Pairs made of two requests back to back, in a random
order within each pair, therefore always put the second request after one of the
other kind: whichever kind leaves the heavier work behind makes the other kind look
slower, a difference that is not in the answer itself. (The registration link's
timing test failed that way: a request after a new address's took 153 ms, after a
known one's 144 ms, so the known address "was slower" in 65 % of 200 pairs while
either kind, timed on its own, took the same.)

So here each request's kind is drawn at random, independently of the one before it,
and a known request is paired with an unknown one that came after the same kind of
request as it did (the nearest such, first come first paired): the work left behind
by the request before is then the same for both sides of a pair, and what is left
to differ is the answer itself.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

# Times one request: for the known address (True) or for a new one (False).
Answer = Callable[[bool], Awaitable[float]]


class PairedTimings:
    """Known/unknown answer times, each pair's two requests made after the same kind of
    request. ``collect`` adds pairs; ``pairs`` holds them as (known, unknown)."""

    def __init__(self, answer: Answer, seed: int | None = None) -> None:
        self.answer = answer
        self.order = random.Random(seed)
        self.pairs: list[tuple[float, float]] = []
        self.requests = 0
        # Times not paired yet, by (the kind of the request before, this one's kind).
        self._waiting: dict[tuple[bool, bool], list[float]] = {
            (before, known): [] for before in (True, False) for known in (True, False)
        }
        self._before: bool | None = None

    async def collect(self, count: int) -> None:
        """Make requests until ``count`` more pairs are made."""
        wanted = len(self.pairs) + count
        while len(self.pairs) < wanted:
            known = self.order.random() < 0.5
            elapsed = await self.answer(known)
            self.requests += 1
            before, self._before = self._before, known
            if before is None:
                continue  # the first request: nothing came before it to match
            self._waiting[(before, known)].append(elapsed)
            knowns, unknowns = self._waiting[(before, True)], self._waiting[(before, False)]
            if knowns and unknowns:
                self.pairs.append((knowns.pop(0), unknowns.pop(0)))

    def known_slower(self) -> int:
        """In how many pairs the known address's answer took longer."""
        return sum(known > unknown for known, unknown in self.pairs)
