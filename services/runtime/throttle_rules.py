"""The rules of throttling, without I/O: budgets, locks, and who the client is.

The public calls that take a secret (sign-in, a set-password token, an invitation
or registration link) or that make work for anyone who asks (a reset email) count
attempts per *key*: an account (its email key, whether or not the account exists,
so the answer never tells a known address from an unknown one), a client address,
a link's token. Each key has a ``Budget``:

- ``free`` charged attempts per ``window`` (the window starts at the first one);
- the attempt that reaches ``free`` locks the key for ``first_lock``; each further
  lock doubles, up to ``max_lock``; a key is refused (``429`` with ``Retry-After``)
  while it is locked, and a refused attempt is not charged;
- a ``strict`` key (an account) is locked again by every charged attempt after a
  lock, until a whole window has passed since the last lock ended; a key shared by
  many people (a client address: one office behind one NAT) starts a new window
  with its free attempts again, and only its locks keep growing.

An attempt is charged when it is admitted, before the call runs (so a burst of
simultaneous guesses cannot all pass before the first failure is written), and the
charge is taken back afterwards when the outcome says so (``Limit.charges``): a
successful sign-in is not a failure. A successful sign-in forgets its account's
count altogether.

What is stored is ``Count`` per key, under a hash of the limit's name and the key's
value (``key_of``): no address or email sits in the table.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
# IPv6 clients get a /64 each and can pick any address in it: count the /64.
IPV6_PREFIX = 64


@dataclass(frozen=True)
class Budget:
    """How many charged attempts a key gets, and how it is locked after them."""

    free: int
    window: timedelta = WINDOW
    first_lock: timedelta = FIRST_LOCK
    max_lock: timedelta = MAX_LOCK
    # After a lock, every charged attempt locks again until a quiet window.
    strict: bool = False

    def lock(self, strikes: int) -> timedelta:
        """How long the key is locked when it has been locked ``strikes`` times before."""
        doubled: timedelta = self.first_lock * 2 ** min(strikes, 20)
        return min(doubled, self.max_lock)


# The budgets (docs/security.md, "Limits", lists where each is used).
PER_ACCOUNT = Budget(free=5, strict=True)
PER_ADDRESS = Budget(free=50)
RESET_REQUESTS_PER_ADDRESS = Budget(free=20)
PER_PERSONAL_LINK = Budget(free=10)
PER_SHARED_LINK = Budget(free=100)


@dataclass(frozen=True)
class Limit:
    """One throttled count of one call: its name (part of every key), its budget,
    and what it charges: ``failures`` (an attempt is charged, and the charge taken
    back unless the call failed the way the call's guard names), or ``attempts``
    (every attempt stays charged). ``forget_on_success``: a success clears the key."""

    name: str
    budget: Budget
    charges: Literal["failures", "attempts"] = "failures"
    forget_on_success: bool = False


@dataclass(frozen=True)
class Count:
    """What is stored for one key."""

    attempts: int = 0
    window_start: datetime | None = None
    locked_until: datetime | None = None
    strikes: int = 0


@dataclass(frozen=True)
class Admitted:
    """An attempt let through: the count to store, and what taking it back undoes."""

    count: Count
    # The lock this attempt imposed (None: it imposed none), and what was before it.
    locked: datetime | None = None
    before_lock: datetime | None = None


@dataclass(frozen=True)
class Refused:
    """An attempt refused: the key is locked for ``retry_after`` more seconds."""

    retry_after: int


def retry_after(until: datetime, now: datetime) -> int:
    """Whole seconds until ``until`` (at least 1)."""
    return max(1, math.ceil((until - now).total_seconds()))


def admit(count: Count, now: datetime, budget: Budget) -> Admitted | Refused:
    """Charge one attempt to a key, or refuse it while the key is locked."""
    if count.locked_until is not None and now < count.locked_until:
        return Refused(retry_after(count.locked_until, now))
    strikes, locked_until = count.strikes, count.locked_until
    if locked_until is not None and now >= locked_until + budget.window:
        strikes, locked_until = 0, None  # a whole window since the last lock ended
    attempts, start = count.attempts, count.window_start
    if start is None or now >= start + budget.window:
        attempts, start = 0, now
    attempts += 1
    if attempts < budget.free and not (budget.strict and strikes > 0):
        return Admitted(Count(attempts, start, locked_until, strikes))
    until = now + budget.lock(strikes)
    return Admitted(
        Count(attempts, start, until, strikes + 1), locked=until, before_lock=locked_until
    )


def take_back(count: Count, admitted: Admitted) -> Count:
    """``count`` (as stored now) without the charge of ``admitted``: its attempt, and
    the lock it imposed if that lock is still the key's."""
    if count.window_start == admitted.count.window_start and count.attempts > 0:
        count = replace(count, attempts=count.attempts - 1)
    if admitted.locked is not None and count.locked_until == admitted.locked:
        count = replace(count, locked_until=admitted.before_lock, strikes=max(0, count.strikes - 1))
    return count


def forget_at(count: Count, budget: Budget) -> datetime | None:
    """When the stored count stops mattering (its window is over and a whole window has
    passed since its last lock): the row can be deleted then. None for an empty count."""
    ends = [t + budget.window for t in (count.window_start, count.locked_until) if t is not None]
    return max(ends) if ends else None


def key_of(limit: str, value: str) -> str:
    """The stored key of ``value`` (an email key, an address, a token) under a limit."""
    return hashlib.sha256(f"{limit}\0{value}".encode()).hexdigest()


# -- who the client is --------------------------------------------------------------------


def trusted_networks(text: str) -> tuple[IPNetwork, ...]:
    """The trusted proxies setting (addresses or networks, comma-separated) parsed;
    ``ValueError`` names an entry that is neither."""
    networks = []
    for entry in (e.strip() for e in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"not an address or network: {entry!r}") from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]
) -> bool:
    return any(address in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the one
    that proxy reports in ``X-Forwarded-For``.

    The header is read from its right end (each proxy appends the address it was
    reached from), past every trusted proxy, so a client that sends its own header
    cannot choose its address: the first address no trusted proxy vouches for is the
    client. ``unknown`` when there is no peer address at all.
    """
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    current = _address(peer or "")
    if current is None:
        return peer or "unknown"
    while _trusted(current, trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break  # a trusted proxy passed on something that is no address: stop at it
        current = previous
    return str(current)


def address_key(ip: str) -> str:
    """The throttling key of a client address: the address, or an IPv6 client's /64."""
    address = _address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address) if address is not None else ip
