"""Where a consumer keeps its dead letters: every message it could not read or apply,
as it arrived (bytes, key, headers, where it came from), why, when, and what each
replay made of it.

A row is written in the transaction of the batch that decided to dead-letter the
message, so it exists exactly when the consumer has moved past the message: no
broker reset (the embedded broker keeps nothing) and no crash can lose it. The
copy on ``<topic>.dlq`` is still published after the commit, for those who watch
the topics.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

metadata = sa.MetaData()

# What a replay made of a dead letter (``replay_outcome``). Applied, duplicate (its
# effect was there already) and skipped (nothing for this service to do) settle it;
# dead_lettered means it still cannot be applied.
SETTLED = ("applied", "duplicate", "skipped")

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("partition", sa.Integer, nullable=True),
    sa.Column("offset", sa.BigInteger, nullable=True),
    sa.Column("key", sa.LargeBinary, nullable=True),
    # [{"name": ..., "value": text} or {"name": ..., "base64": ...}], in record order.
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # Known when the message is an envelope.
    sa.Column("event_id", UUID(as_uuid=True), nullable=True),
    sa.Column("type", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    # The same message dead-lettered again (redelivered after a crash, or read again
    # after a reset) is kept once: its event_id, else where it was and its digest.
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column(
        "dead_lettered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("replays", sa.Integer, nullable=False, server_default="0"),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("replay_outcome", sa.Text, nullable=True),
    sa.Column("replay_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("consumer", "fingerprint", name="uq_dead_letters_fingerprint"),
)


@dataclass(frozen=True)
class NewDeadLetter:
    """A message a consumer sets aside, as it arrived."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    body: bytes
    event_id: uuid.UUID | None
    type: str | None
    reason: str

    @property
    def fingerprint(self) -> str:
        """What makes two dead letters the same message."""
        if self.event_id is not None:
            return f"event:{self.event_id}"
        digest = hashlib.sha256(self.body).hexdigest()
        return f"record:{self.topic}:{self.partition}:{self.offset}:{digest}"


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as kept, with what its replays made of it."""

    id: int
    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    body: bytes
    event_id: uuid.UUID | None
    type: str | None
    reason: str
    dead_lettered_at: datetime
    replays: int
    replayed_at: datetime | None
    replay_outcome: str | None
    replay_reason: str | None

    @property
    def settled(self) -> bool:
        """A replay applied it (or found its effect there, or nothing to do)."""
        return self.replay_outcome in SETTLED


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[dict[str, str]]:
    """Kafka headers as JSON: text where the bytes are UTF-8 without NUL (PostgreSQL's
    JSON cannot hold one), base64 otherwise; order and repeats kept."""
    out: list[dict[str, str]] = []
    for name, value in headers:
        raw = bytes(value or b"")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = None
        if text is not None and "\x00" not in text:
            out.append({"name": name, "value": text})
        else:
            out.append({"name": name, "base64": base64.b64encode(raw).decode()})
    return out


def decode_headers(stored: Sequence[dict[str, str]]) -> list[tuple[str, bytes]]:
    """The Kafka headers ``encode_headers`` kept."""
    return [
        (h["name"], base64.b64decode(h["base64"]) if "base64" in h else h["value"].encode())
        for h in stored
    ]


async def record(conn: AsyncConnection, consumer: str, letters: Sequence[NewDeadLetter]) -> None:
    """Keep these dead letters (in the caller's transaction); one already kept stays as is."""
    if not letters:
        return
    rows = [
        {
            "consumer": consumer,
            "topic": d.topic,
            "partition": d.partition,
            "offset": d.offset,
            "key": d.key,
            "headers": encode_headers(d.headers),
            "body": d.body,
            "event_id": d.event_id,
            "type": d.type,
            "reason": d.reason,
            "fingerprint": d.fingerprint,
        }
        for d in letters
    ]
    await conn.execute(
        pg_insert(dead_letters).on_conflict_do_nothing(index_elements=["consumer", "fingerprint"]),
        rows,
    )


async def record_replay(
    conn: AsyncConnection, letter_id: int, outcome: str, reason: str | None
) -> None:
    """What a replay made of a dead letter (in the replay's transaction)."""
    await conn.execute(
        sa.update(dead_letters)
        .where(dead_letters.c.id == letter_id)
        .values(
            replays=dead_letters.c.replays + 1,
            replayed_at=sa.func.now(),
            replay_outcome=outcome,
            replay_reason=reason,
        )
    )


def _stored(row: Any) -> StoredDeadLetter:
    return StoredDeadLetter(
        id=row.id,
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        key=row.key,
        headers=decode_headers(row.headers),
        body=row.body,
        event_id=row.event_id,
        type=row.type,
        reason=row.reason,
        dead_lettered_at=row.dead_lettered_at,
        replays=row.replays,
        replayed_at=row.replayed_at,
        replay_outcome=row.replay_outcome,
        replay_reason=row.replay_reason,
    )


def _unsettled() -> sa.ColumnElement[bool]:
    return sa.or_(
        dead_letters.c.replay_outcome.is_(None), dead_letters.c.replay_outcome.not_in(SETTLED)
    )


async def listing(
    engine: AsyncEngine, consumer: str, *, unsettled_only: bool = False, limit: int = 1000
) -> list[StoredDeadLetter]:
    """The consumer's dead letters, oldest first (``unsettled_only``: no replay applied them)."""
    query = sa.select(dead_letters).where(dead_letters.c.consumer == consumer)
    if unsettled_only:
        query = query.where(_unsettled())
    async with engine.connect() as conn:
        rows = await conn.execute(query.order_by(dead_letters.c.id).limit(limit))
        return [_stored(r) for r in rows]


async def fetch(
    engine: AsyncEngine, consumer: str, ids: Collection[int]
) -> dict[int, StoredDeadLetter]:
    """These dead letters of the consumer, by id (unknown ids are missing)."""
    if not ids:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(dead_letters).where(
                dead_letters.c.consumer == consumer, dead_letters.c.id.in_(sorted(set(ids)))
            )
        )
        return {r.id: _stored(r) for r in rows}


async def unsettled(engine: AsyncEngine, consumer: str) -> int:
    """How many of the consumer's dead letters no replay has applied yet."""
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.consumer == consumer, _unsettled())
        )
    return int(count or 0)
