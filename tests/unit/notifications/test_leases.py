"""The lease rules (plain Python): when a worker may take over another's email."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prodigy_users.notifications.domain import Lease, lease_orphaned

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
GRACE = timedelta(seconds=15)
# The database has been up for an hour unless a test says otherwise.
UP_SINCE = NOW - timedelta(hours=1)


def lease(
    *,
    holder: int | None = 7,
    alive: bool = False,
    claimed_ago: float = 5.0,
    ends_in: float = 115.0,
) -> Lease:
    return Lease(
        email_id=uuid.uuid4(),
        attempts=1,
        holder=holder,
        claimed_at=NOW - timedelta(seconds=claimed_ago),
        ends_at=NOW + timedelta(seconds=ends_in),
        holder_alive=alive,
    )


def orphaned(held: Lease, *, started: datetime = UP_SINCE) -> bool:
    return lease_orphaned(held, now=NOW, database_started_at=started, grace=GRACE)


def test_a_dead_holders_lease_is_taken_over_at_once() -> None:
    assert orphaned(lease(alive=False, claimed_ago=0.1, ends_in=119.9))


def test_a_live_holders_lease_is_left_alone_until_it_ends() -> None:
    assert not orphaned(lease(alive=True))
    assert not orphaned(lease(alive=True, ends_in=0.001))
    assert orphaned(lease(alive=True, ends_in=0.0)), "an expired lease is due, live or not"
    assert orphaned(lease(alive=True, ends_in=-1.0))


def test_a_lease_without_a_holder_waits_for_its_end() -> None:
    # Claimed before workers had ids: nobody can tell whether its holder lives.
    assert not orphaned(lease(holder=None, alive=False))
    assert orphaned(lease(holder=None, alive=False, ends_in=-0.5))


def test_after_a_database_restart_the_holders_get_a_grace_to_come_back() -> None:
    # Every lock went with the restart: the holder of a lease claimed before it may
    # well be alive, with answers of the relay to record once it has reconnected.
    restarted = NOW - timedelta(seconds=3)
    before = lease(alive=False, claimed_ago=20.0)
    assert not orphaned(before, started=restarted)
    assert not orphaned(before, started=NOW - GRACE + timedelta(milliseconds=1))
    assert orphaned(before, started=NOW - GRACE)
    # A lease claimed since the restart has no such excuse: its holder died.
    assert orphaned(lease(alive=False, claimed_ago=1.0), started=restarted)
    # And a holder that came back keeps its lease.
    assert not orphaned(lease(alive=True, claimed_ago=10.0), started=restarted)


def test_a_lease_with_no_claim_time_is_treated_as_claimed_before_the_restart() -> None:
    held = Lease(uuid.uuid4(), 1, 7, None, NOW + timedelta(seconds=60), holder_alive=False)
    assert not orphaned(held, started=NOW - timedelta(seconds=1))
    assert orphaned(held, started=NOW - GRACE - timedelta(seconds=1))


def test_no_grace_takes_over_at_once_even_after_a_restart() -> None:
    before = lease(alive=False, claimed_ago=10.0)
    assert lease_orphaned(before, now=NOW, database_started_at=NOW, grace=timedelta(0))
