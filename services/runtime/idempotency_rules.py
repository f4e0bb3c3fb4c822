"""The rules of the ``Idempotency-Key`` request header, without I/O.

A client that sends ``Idempotency-Key`` with a POST that creates something may send
the same request again (its connection was cut, it timed out) and be answered what
the first attempt was answered, instead of creating a second thing or being told
that the first one exists. The IETF httpapi draft "The Idempotency-Key HTTP Header
Field" describes it; keys are kept for ``KEY_TTL``.

This module says which keys are valid, what makes two requests "the same"
(``fingerprint``), and what a request finds when its key was used before
(``decide``); ``runtime.idempotency`` does the I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .errors import DomainError, InvalidInput, ProblemTable, ProblemType

HEADER = "Idempotency-Key"
# How long a key is remembered (the draft leaves it to the server; ours: a day).
KEY_TTL = timedelta(hours=24)
# How long a request holds its key while it runs before another may take it over
# (a process that died holding it). A running request renews its lease.
LEASE = timedelta(seconds=15)
MAX_KEY_LENGTH = 255
# What a replay keeps of the first answer besides status and body.
REPLAYED_HEADERS = frozenset({"content-type", "location", "retry-after"})
# Seconds a client is told to wait when the key's first request is still running:
# soon, as most requests end within seconds (a dead holder's lease ends within LEASE).
IN_USE_RETRY_AFTER_S = 1

Verdict = Literal["run", "replay", "mismatch", "in_use"]
State = Literal["in_progress", "done"]


class IdempotencyKeyMismatch(DomainError):
    """The key was used before with a different request."""

    default_detail = (
        "This Idempotency-Key was used with a different request (method, path, query or "
        "body); send a new key for a new request."
    )


class IdempotencyKeyInUse(DomainError):
    """The first request with this key is still running."""

    default_detail = (
        "A request with this Idempotency-Key is still being processed; send it again "
        "shortly to get its answer."
    )


PROBLEMS: ProblemTable = {
    IdempotencyKeyMismatch: ProblemType(
        422, "idempotency-key-mismatch", "Idempotency key reused"
    ),
    IdempotencyKeyInUse: ProblemType(409, "idempotency-key-in-use", "Request in progress"),
}


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(
        f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
        '(optionally in double quotes, as a structured-field string: "...").',
        errors=[{"field": HEADER, "message": message}],
    )


def parse_key(values: Sequence[str]) -> str:
    """The key of a request's ``Idempotency-Key`` header values (``InvalidInput`` if bad).

    The draft sends the key as a structured-field string (``"8e03978e-..."``); many
    clients send it bare. Both are the same key: the quotes (and the string's
    ``\\"`` and ``\\\\`` escapes) are taken off.
    """
    if len(values) != 1:
        raise _invalid("send the header once")
    value = values[0].strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not value:
        raise _invalid("must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise _invalid(f"at most {MAX_KEY_LENGTH} characters")
    if not all("!" <= c <= "~" for c in value):
        raise _invalid("visible ASCII characters only (no spaces or control characters)")
    return value


def scoped(caller: str, key: str) -> str:
    """A key as the caller's: two callers' equal keys are different keys. The caller
    (an account id, or ``anonymous``) has no ``:``, so the two never run together."""
    return f"{caller}:{key}"


def _boundary(content_type: str) -> bytes | None:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value:
            return value.strip().strip('"').encode("latin-1")
    return None


def fingerprint(method: str, path: str, query: bytes, content_type: str, body: bytes) -> str:
    """What makes two requests the same: method, path, query string and body.

    A multipart body is compared without its boundary: a client encoding the same
    file again picks a new random boundary (which by definition occurs nowhere else
    in the body), and that is still the same request.
    """
    boundary = _boundary(content_type)
    if boundary:
        body = body.replace(boundary, b"")
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class Held:
    """What the store holds for a key: its request's fingerprint and where it stands."""

    state: State
    fingerprint: str
    created_at: datetime
    locked_until: datetime


def expired(held: Held, now: datetime, ttl: timedelta = KEY_TTL) -> bool:
    """A key older than ``ttl`` is forgotten: it counts as never used."""
    return now - held.created_at >= ttl


def decide(held: Held, fingerprint: str, now: datetime, ttl: timedelta = KEY_TTL) -> Verdict:
    """What a request with a key that is already held gets.

    ``run``: the key is forgotten (expired), or its first request died while holding it
    (its lease ran out) and this one, the same request, takes it over; ``mismatch``:
    the key was used for a different request; ``replay``: the first request's answer;
    ``in_use``: the first request is still running.
    """
    if expired(held, now, ttl):
        return "run"
    if held.fingerprint != fingerprint:
        return "mismatch"
    if held.state == "done":
        return "replay"
    if held.locked_until <= now:
        return "run"
    return "in_use"


def kept_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[list[str]]:
    """The headers of an answer that a replay repeats (as JSON-friendly pairs)."""
    return [
        [name.decode("latin-1").lower(), value.decode("latin-1")]
        for name, value in headers
        if name.decode("latin-1").lower() in REPLAYED_HEADERS
    ]


def replay_headers(kept: Iterable[Sequence[str]]) -> list[tuple[bytes, bytes]]:
    """The headers of a replayed answer: the kept ones, and ``Idempotent-Replayed``."""
    out = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in kept]
    out.append((b"idempotent-replayed", b"true"))
    return out


def worth_keeping(status: int) -> bool:
    """An answer is remembered unless the server failed (5xx: a retry then runs again),
    or the caller was not authenticated (401: nothing was looked at, and keeping it
    would let anyone without a token fill the table)."""
    return status < 500 and status != 401
