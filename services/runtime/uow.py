"""Unit of work: one transaction holding a state change and the events it causes.

Events emitted inside the unit go into the outbox table in the same transaction,
so they are published if and only if the change commits (no dual write).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Text, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import Envelope, P, wrap
from prodigy_users.contracts.topics import topic_of

from .logging import correlation_id as current_correlation
from .messaging_tables import inbox, outbox
from .tracing import outbox_headers

NOTIFY_CHANNEL = "outbox"


class UnitOfWork:
    """``async with UnitOfWork(engine, "membership") as uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls everything back. A consumer
    applying a batch builds one per message with ``joined`` on its shared
    transaction instead, and commits the batch itself.
    """

    def __init__(
        self,
        engine: AsyncEngine | None,
        producer: str,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        self._engine = engine
        self.producer = producer
        self.correlation_id = correlation_id or current_correlation.get()
        self.causation_id = causation_id
        self._conn: AsyncConnection | None = None
        self._pending: list[Envelope[Any]] = []
        self._after_commit: list[Callable[[], None]] = []

    @classmethod
    def joined(
        cls,
        conn: AsyncConnection,
        producer: str,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> UnitOfWork:
        """A unit inside a transaction someone else owns (commit with ``flush``, then theirs)."""
        unit = cls(None, producer, correlation_id=correlation_id, causation_id=causation_id)
        unit._conn = conn
        return unit

    @property
    def conn(self) -> AsyncConnection:
        """The connection inside the open transaction."""
        assert self._conn is not None, "unit of work is not open"
        return self._conn

    async def __aenter__(self) -> Self:
        assert self._engine is not None, "a joined unit is not opened on its own"
        self._conn = await self._engine.connect()
        await self._conn.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    def emit(self, payload: P, *, key: str | uuid.UUID) -> Envelope[P]:
        """Record an event to publish when this unit commits."""
        envelope = wrap(
            payload,
            producer=self.producer,
            key=str(key),
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        self._pending.append(envelope)
        return envelope

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (e.g. wake a waiting request)."""
        self._after_commit.append(callback)

    async def claim(self, consumer: str, event_id: uuid.UUID) -> bool:
        """Record that ``consumer`` applies ``event_id`` now; False if it already has.

        The row commits with the effect, so a redelivered event finds it and is skipped.
        """
        stmt = (
            pg_insert(inbox)
            .values(consumer=consumer, event_id=event_id)
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def already_applied(self, consumer: str, event_id: uuid.UUID) -> bool:
        """True if ``consumer`` has applied ``event_id`` (read-only check)."""
        row = await self.conn.execute(
            select(inbox.c.event_id).where(
                inbox.c.consumer == consumer, inbox.c.event_id == event_id
            )
        )
        return row.first() is not None

    def outbox_rows(self) -> list[dict[str, Any]]:
        """The pending events as outbox rows, taken (no longer pending).

        Each row carries the trace context current now (the request's or the consumed
        message's span), so the trace continues across the hop: take them inside it.
        """
        if not self._pending:
            return []
        headers = outbox_headers()
        rows = [
            {
                "event_id": e.event_id,
                "topic": topic_of(type(e.data)).name,
                "key": e.key,
                "type": e.type,
                "envelope": e.model_dump(mode="json"),
                "headers": headers,
            }
            for e in self._pending
        ]
        self._pending.clear()
        return rows

    async def flush(self) -> int:
        """Write the pending events to the outbox (in the open transaction); how many."""
        return await write_outbox(self.conn, self.outbox_rows())

    def take_callbacks(self) -> list[Callable[[], None]]:
        """The after-commit callbacks, handed to whoever commits."""
        callbacks, self._after_commit = self._after_commit, []
        return callbacks

    async def commit(self) -> None:
        """Write the pending events to the outbox and commit everything at once."""
        if await self.flush():
            await notify_relay(self.conn)
        await self.conn.commit()
        for callback in self.take_callbacks():
            callback()


async def write_outbox(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows in the order given (one round trip); how many."""
    if rows:
        await conn.execute(insert(outbox), rows)
    return len(rows)


async def claim_many(
    conn: AsyncConnection, consumer: str, event_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Record that ``consumer`` applies these events now; the ones it had not applied yet.

    One statement for a whole batch; like ``UnitOfWork.claim`` the rows commit with
    the effects, so a redelivered batch finds them and is skipped.
    """
    if not event_ids:
        return set()
    stmt = (
        pg_insert(inbox)
        .from_select(
            ["consumer", "event_id"],
            select(
                literal(consumer, Text).label("consumer"),
                func.unnest(literal(event_ids, ARRAY(UUID(as_uuid=True)))).label("event_id"),
            ),
        )
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return set((await conn.execute(stmt)).scalars())


async def notify_relay(conn: AsyncConnection) -> None:
    """Wake the outbox relay when this transaction commits (NOTIFY is delivered at commit)."""
    await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
