"""A notifications process SIGKILLed in the middle of a burst, on the real stack (its
own: PostgreSQL, the broker, the SMTP capture, two notifications processes).

What it had in flight is sent again within seconds (its session lock died with it,
so its leases are taken over at once, not after the 120 s lease), by the restarted
process or by the other one, and every email reaches the relay. Exactly once, but
for the one window no worker can close: between the relay's 250 for a message and
the commit that records it. The tests measure that window instead of hiding it:
each email that arrived twice must have arrived the first time within
``WINDOW_S`` of the kill (the group commit's time, generously, on a loaded machine).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.notifications.tables import emails
from prodigy_users.stack.supervisor import Stack
from tests.conftest import TEST_SERVICE_ENV
from tests.e2e.notifications_support import captured, notifications_pair, queue_emails
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

BURST = 600
# Recovery must be a matter of seconds (the lease would have been 120 s).
RECOVERY_S = 30.0
# The longest a first copy of a twice-sent email may precede the kill.
WINDOW_S = 1.0


@pytest.fixture(scope="module")
async def pair_for_the_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One pair for the module's tests (starting one took a quarter of a minute)."""
    async with notifications_pair(tmp_path_factory.mktemp("crash"), TEST_SERVICE_ENV) as stack:
        yield stack


@pytest.fixture
async def pair(pair_for_the_module: Stack) -> Stack:
    """The pair with both processes running, whatever the test before stopped or killed
    (each test queues emails of its own and looks only at those)."""
    await pair_for_the_module.start_service("notifications")
    return pair_for_the_module


async def wait_captured(stack: Stack, wanted: dict[str, uuid.UUID], at_least: int) -> None:
    async def enough() -> bool:
        return len(await captured(stack, wanted)) >= at_least

    await wait_for(enough, timeout=120, interval=0.05, what=f"{at_least} emails captured")


@dataclass(frozen=True)
class Settled:
    """How the burst ended: attempts and sent_at of each email (the database's)."""

    attempts: dict[uuid.UUID, int]
    sent_at: dict[uuid.UUID, datetime]


async def all_sent(db: AsyncEngine, wanted: dict[str, uuid.UUID], timeout: float) -> Settled:
    ids = list(wanted.values())

    async def probe() -> Settled | None:
        async with db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        emails.c.id, emails.c.status, emails.c.attempts, emails.c.sent_at
                    ).where(emails.c.id.in_(ids))
                )
            ).all()
        if len(rows) != len(ids) or any(r.status != "sent" for r in rows):
            return None
        return Settled({r.id: r.attempts for r in rows}, {r.id: r.sent_at for r in rows})

    return await wait_for(probe, timeout=timeout, interval=0.1, what="every email sent")


def stamp(mail: dict[str, Any]) -> float:
    return datetime.fromisoformat(mail["received_at"]).timestamp()


def check_each_once_but_the_window(
    mails: list[dict[str, Any]], wanted: dict[str, uuid.UUID], killed_at: float
) -> int:
    """Every email arrived; those that arrived twice had their first copy accepted just
    before the kill (the 250-to-commit window). How many arrived twice."""
    by_to = Counter(m["to"][0] for m in mails)
    assert set(by_to) == set(wanted), "every email reached the relay"
    assert max(by_to.values()) <= 2, by_to.most_common(3)
    twice = {to for to, n in by_to.items() if n == 2}
    for to in twice:
        copies = sorted((m for m in mails if m["to"][0] == to), key=stamp)
        # The same email both times (same Message-ID): a resend, not a new email.
        assert copies[0]["message_id"] == copies[1]["message_id"]
        assert copies[0]["message_id"].startswith(f"<{wanted[to]}@")
        before_kill = killed_at - stamp(copies[0])
        assert -0.5 <= before_kill <= WINDOW_S, (to, before_kill)
    print(f"\n{len(twice)} of {len(wanted)} emails sent twice (the 250-to-commit window)")
    return len(twice)


async def test_a_killed_process_restarted_sends_what_it_had_in_flight_within_seconds(
    pair: Stack, notifications_db: AsyncEngine
) -> None:
    await pair.stop_service("notifications-2")  # one process: the restarted one recovers
    wanted = await queue_emails(notifications_db, BURST, "crash")
    await wait_captured(pair, wanted, BURST // 6)
    killed_at = time.time()
    await pair.stop_service("notifications-1", kill=True)
    async with notifications_db.connect() as conn:
        in_flight = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(emails)
            .where(emails.c.id.in_(list(wanted.values())), emails.c.status == "sending")
        )
    assert in_flight, "the kill found emails in flight (else this test proves nothing)"

    restarted_at = time.time()
    await pair.start_service("notifications-1")
    settled = await all_sent(notifications_db, wanted, timeout=RECOVERY_S + 60)
    recovered = [i for i, n in settled.attempts.items() if n >= 2]
    assert recovered, "emails that were in flight were tried again"
    took = max(settled.sent_at[i].timestamp() for i in recovered) - restarted_at
    print(f"\n{in_flight} in flight at the kill; all sent {took:.1f} s after the restart began")
    assert took < RECOVERY_S, "recovered at once, not when the 120 s lease ran out"

    check_each_once_but_the_window(await captured(pair, wanted), wanted, killed_at)


async def test_with_two_processes_the_survivor_completes_the_killed_ones_emails(
    pair: Stack, notifications_db: AsyncEngine
) -> None:
    wanted = await queue_emails(notifications_db, BURST, "crash")
    await wait_captured(pair, wanted, BURST // 6)
    killed_at = time.time()
    await pair.stop_service("notifications-2", kill=True)

    settled = await all_sent(notifications_db, wanted, timeout=RECOVERY_S + 60)
    recovered = [i for i, n in settled.attempts.items() if n >= 2]
    assert recovered, "the killed process had emails in flight, and they went out again"
    took = max(settled.sent_at[i].timestamp() for i in recovered) - killed_at
    print(f"\n{len(recovered)} taken over from the killed process, {took:.1f} s after the kill")
    assert took < RECOVERY_S, "taken over at once, not when the 120 s lease ran out"
    check_each_once_but_the_window(await captured(pair, wanted), wanted, killed_at)

    # The killed one comes back and finds nothing left to do: nothing goes out again.
    before = len(await captured(pair, wanted))
    await pair.start_service("notifications-2")
    await all_sent(notifications_db, await queue_emails(notifications_db, 50, "crash"), timeout=60)
    assert len(await captured(pair, wanted)) == before


async def test_a_clean_stop_beside_a_live_process_sends_nothing_twice(
    pair: Stack, notifications_db: AsyncEngine
) -> None:
    # SIGTERM (a rolling update): the stopping process keeps its lock until what it
    # has in flight is recorded and the rest handed back, so the other process
    # never takes over an email the relay is being given.
    wanted = await queue_emails(notifications_db, BURST, "crash")
    await wait_captured(pair, wanted, BURST // 6)
    await pair.stop_service("notifications-2")
    await all_sent(notifications_db, wanted, timeout=RECOVERY_S + 60)
    copies = Counter(m["to"][0] for m in await captured(pair, wanted))
    assert set(copies) == set(wanted)
    assert max(copies.values()) == 1, copies.most_common(3)
