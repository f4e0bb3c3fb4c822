"""The throttling rules (``runtime.throttle_rules``): budgets, locks that double, what a
success takes back, and who the client is behind trusted proxies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from prodigy_users.runtime.throttle_rules import (
    PER_ACCOUNT,
    PER_ADDRESS,
    Admitted,
    Budget,
    Count,
    Refused,
    address_key,
    admit,
    client_ip,
    forget_at,
    key_of,
    take_back,
    trusted_networks,
)

T0 = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def charge(count: Count, now: datetime, budget: Budget) -> Admitted:
    verdict = admit(count, now, budget)
    assert isinstance(verdict, Admitted), f"refused at {now}: {verdict}"
    return verdict


def refused(count: Count, now: datetime, budget: Budget) -> int:
    verdict = admit(count, now, budget)
    assert isinstance(verdict, Refused), f"admitted at {now}"
    return verdict.retry_after


def test_an_account_gets_five_attempts_then_a_30_second_lock() -> None:
    count = Count()
    for n in range(1, 6):
        admitted = charge(count, T0 + n * SECOND, PER_ACCOUNT)
        count = admitted.count
        assert (admitted.locked is None) == (n < 5), n
    assert count.locked_until == T0 + 5 * SECOND + timedelta(seconds=30)
    assert refused(count, T0 + 6 * SECOND, PER_ACCOUNT) == 29
    assert refused(count, T0 + 34.5 * SECOND, PER_ACCOUNT) == 1
    # Refusals are not charged: the count is what it was.
    assert count.attempts == 5


def test_after_a_lock_each_failure_of_an_account_locks_again_twice_as_long_up_to_15_min() -> None:
    count = Count()
    now = T0
    for _ in range(5):
        count = charge(count, now, PER_ACCOUNT).count
    locks = []
    for _ in range(8):
        assert count.locked_until is not None
        now = count.locked_until  # the moment the lock ends
        admitted = charge(count, now, PER_ACCOUNT)
        assert admitted.locked is not None
        locks.append(int((admitted.locked - now).total_seconds()))
        count = admitted.count
    assert locks == [60, 120, 240, 480, 900, 900, 900, 900]


def test_a_quiet_window_after_the_last_lock_gives_an_account_its_free_attempts_again() -> None:
    count = Count()
    for _ in range(5):
        count = charge(count, T0, PER_ACCOUNT).count
    assert count.locked_until is not None
    # Strict: right after the lock, the first failure locks again.
    assert charge(count, count.locked_until, PER_ACCOUNT).locked is not None
    quiet = count.locked_until + PER_ACCOUNT.window
    for n in range(4):
        assert charge(count, quiet + n * SECOND, PER_ACCOUNT).locked is None
        count = charge(count, quiet + n * SECOND, PER_ACCOUNT).count
    assert count.strikes == 0 and count.attempts == 4


def test_an_address_gets_its_budget_again_in_each_window_and_only_its_locks_grow() -> None:
    count = Count()
    for _ in range(PER_ADDRESS.free):
        count = charge(count, T0, PER_ADDRESS).count
    assert count.locked_until == T0 + timedelta(seconds=30)
    # Not strict: a new window (15 minutes after the first attempt) starts afresh...
    later = T0 + PER_ADDRESS.window
    for _ in range(PER_ADDRESS.free - 1):
        admitted = charge(count, later, PER_ADDRESS)
        assert admitted.locked is None
        count = admitted.count
    # ...but the next lock remembers the last one (it ended less than a window ago).
    admitted = charge(count, later, PER_ADDRESS)
    assert admitted.locked == later + timedelta(seconds=60)


def test_taking_back_a_charge_undoes_its_attempt_and_the_lock_it_imposed() -> None:
    count = Count()
    for _ in range(PER_ADDRESS.free - 1):
        count = charge(count, T0, PER_ADDRESS).count
    fiftieth = charge(count, T0 + SECOND, PER_ADDRESS)
    assert fiftieth.locked is not None
    back = take_back(fiftieth.count, fiftieth)
    assert (back.attempts, back.locked_until, back.strikes) == (PER_ADDRESS.free - 1, None, 0)
    # Another admission's lock stays: only the charge's own lock is undone.
    other = Admitted(Count(3, T0), locked=T0 + timedelta(minutes=5))
    assert take_back(fiftieth.count, other).locked_until == fiftieth.locked
    # A charge of an earlier window takes back nothing of the new one.
    old = Admitted(Count(1, T0 - timedelta(hours=1)))
    assert take_back(Count(2, T0), old) == Count(2, T0)


def test_a_count_is_forgotten_a_window_after_its_window_or_its_last_lock_ends() -> None:
    assert forget_at(Count(), PER_ACCOUNT) is None
    assert forget_at(Count(1, T0), PER_ACCOUNT) == T0 + PER_ACCOUNT.window
    locked = Count(5, T0, T0 + timedelta(minutes=15), 5)
    assert forget_at(locked, PER_ACCOUNT) == T0 + timedelta(minutes=30)


def test_keys_hold_no_value_in_the_clear_and_differ_per_limit() -> None:
    key = key_of("sign-in/account", "ana@example.org")
    assert "ana" not in key and len(key) == 64
    assert key != key_of("sign-in/address", "ana@example.org")
    assert key == key_of("sign-in/account", "ana@example.org")


PROXIES = trusted_networks("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No proxy: the connection's address, whatever the header says.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        # Through a trusted proxy: the address it appended.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # A client's own header in front is passed over: the proxy's entry is last.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies (the ingress, then the console), as two headers too.
        ("127.0.0.1", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1", "10.9.9.9"], "198.51.100.1"),
        # Only trusted proxies: the leftmost.
        ("127.0.0.1", ["10.0.0.5"], "10.0.0.5"),
        # A trusted proxy with no header, or one that passed garbage: the proxy.
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["not-an-address"], "10.1.2.3"),
        # Ports and brackets, IPv4 in IPv6.
        ("10.1.2.3", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.1.2.3", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
    ],
)
def test_the_client_is_the_first_address_no_trusted_proxy_vouches_for(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert client_ip(peer, forwarded, PROXIES) == client


def test_an_ipv6_client_counts_as_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("203.0.113.7") == "203.0.113.7"


def test_the_trusted_proxies_setting_names_a_bad_entry() -> None:
    assert trusted_networks("") == ()
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        trusted_networks("127.0.0.1, 10.0.0.0/33")
