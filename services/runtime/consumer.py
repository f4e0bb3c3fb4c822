"""Consumers: read a topic, dedupe on ``event_id``, apply, or dead-letter with the reason.

A service declares ``handlers``: payload type -> coroutine. Each message is
applied in its own unit of work whose inbox row commits with the effect, so a
redelivered message changes nothing. Messages nobody can read (not JSON, not an
envelope, a payload that fails its schema, or one that keeps failing) go to the
topic's ``.dlq`` with the reason in headers, and the consumer moves on.
Unknown ``type``s are skipped: producers may add event types at any time. So are
the messages a service declares it has nothing to do with (``ignored``), without
an inbox row. Payloads are validated as *read* (``contracts.email.READING``).

A fetched batch is applied in one transaction. The fast path claims every
``event_id`` in one statement and applies the messages without savepoints (and a
service's *batch handler*, if it has one, takes whole runs of its payload types at
once); if any message fails, the transaction is rolled back and the batch is
applied again message by message, each under its own savepoint, so one bad message
is isolated and dead-lettered while the others commit.

Every dead letter is also kept in the service's own database (``dead_letter_store``),
written in the transaction that decides it, so a reset of the embedded broker cannot
lose it; ``apply_stored`` feeds kept dead letters through this same path again (an
operator's replay), and records what became of them. On the embedded broker the same
transaction records how far each partition has been read (``resume``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from opentelemetry.trace import Span
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.email import READING
from prodigy_users.contracts.envelope import Payload, RawEnvelope
from prodigy_users.contracts.topics import TOPICS, Topic

from . import dead_letter_store
from .dead_letter_store import NewDeadLetter, StoredDeadLetter
from .logging import correlation_id, get_logger
from .metrics import Metrics
from .resume import Progress, Resumer
from .settings import ServiceSettings
from .tracing import (
    consume_span,
    outbox_headers,
    record_dead_letter,
    record_headers,
    record_outcome,
    run_carriers,
)
from .uow import UnitOfWork, claim_many, notify_relay, write_outbox

log = get_logger(__name__)

Handler = Callable[[UnitOfWork, RawEnvelope, Any], Awaitable[None]]
# Applies a run of messages at once, in order, inside the batch's transaction.
BatchHandler = Callable[[AsyncConnection, Sequence[tuple[RawEnvelope, Any]]], Awaitable[None]]

# Errors that say "the database is away", not "this message is bad": retry for ever.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, OSError, KafkaError)
# SQLSTATE classes about the connection or the moment, never about the message:
# connection (08), transaction state (25, e.g. a connection left in a read-only
# transaction), rollbacks: deadlock, serialization (40), resources (53), locks (55),
# shutdown (57), system (58). Dead-lettering on these would drop good messages.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58"})
# Of those, the ones that say this connection must not go back to the pool.
BROKEN_CONNECTION_CLASSES = frozenset({"08", "25"})


def _sqlstate_class(exc: BaseException) -> str | None:
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state[:2] if isinstance(state, str) else None


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` says "try again later" rather than "this message is bad"."""
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and _sqlstate_class(exc) in TRANSIENT_SQLSTATE_CLASSES


class ReplayFailed(Exception):
    """A replay met a readable message its handler could not apply (nothing is switched)."""


class DeadLetter(Exception):
    """Raised by a handler for a message that can never be applied (goes to the DLQ)."""


@dataclass
class _Item:
    """One message of a batch: parsed, or the reason it cannot be."""

    topic: Topic
    body: bytes
    raw: Any
    envelope: RawEnvelope | None = None
    payload: Any = None
    handler: Handler | None = None
    dead: str | None = None
    outcome: str = "skipped"
    failed: bool = False  # a readable message its handler could not apply
    # What the envelope says, when the body is one (also when its payload is not valid).
    event_id: uuid.UUID | None = None
    type: str | None = None
    letter: int | None = None  # the kept dead letter this message is a replay of

    def dead_letter(self) -> NewDeadLetter:
        """The message as a dead letter to keep."""
        assert self.dead is not None
        return NewDeadLetter(
            topic=self.topic.name,
            partition=getattr(self.raw, "partition", None),
            offset=getattr(self.raw, "offset", None),
            key=getattr(self.raw, "key", None),
            headers=[
                (name, value.encode() if isinstance(value, str) else bytes(value or b""))
                for name, value in record_headers(self.raw)
            ],
            body=self.body,
            event_id=self.event_id,
            type=self.type,
            reason=self.dead,
        )


@dataclass(frozen=True)
class StoredRecord:
    """A kept dead letter as a Kafka record, for the consumer to read again."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Replayed:
    """What a replay made of one kept dead letter."""

    id: int
    outcome: str  # applied, duplicate, skipped, or dead_lettered (with the reason)
    reason: str | None


def subscribed_topics(handled: Collection[type[Payload]]) -> list[Topic]:
    """The topics a handler table subscribes to: those carrying one of its payload types.

    The registry's ``consumers`` must name the same (tests/deploy checks it): they
    decide the Kafka grants.
    """
    return [t for t in TOPICS if any(p in handled for p in t.payloads)]


@dataclass
class Consumer:
    """Subscribes one service's handlers to the topics that carry their payloads."""

    service: str
    engine: AsyncEngine
    broker: KafkaBroker
    settings: ServiceSettings
    handlers: Mapping[type[Payload], Handler]
    metrics: Metrics | None = None
    # Optional: one call for a run of consecutive messages of these payload types
    # (they must also have per-message ``handlers``, used when a batch is retried).
    batch_handler: BatchHandler | None = None
    batch_types: frozenset[type[Payload]] = frozenset()
    # A replay re-reads topics whose bad messages were dead-lettered already.
    dead_letter: bool = True
    # Messages a service reads but knows its handler would do nothing with: skipped
    # like unknown types, without an inbox row (applying them again changes nothing).
    ignored: Mapping[type[Payload], Callable[[Any], bool]] = field(default_factory=dict)
    # Resume points (embedded broker only): set by ``register`` when the settings name
    # the broker epoch file.
    resume: Resumer | None = None

    def _count(self, topic: Topic, type_: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.consumed.labels(self.service, topic.name, type_, outcome).inc()

    def _span(self, item: _Item) -> contextlib.AbstractContextManager[Span]:
        """The message's consumer span (its parent travels in the record's headers)."""
        assert item.envelope is not None
        return consume_span(item.topic.name, item.envelope, item.raw, consumer=self.service)

    def topics(self) -> list[Topic]:
        """The topics carrying at least one handled payload type."""
        return subscribed_topics(self.handlers)

    def by_type(self) -> dict[str, tuple[type[Payload], Handler]]:
        """Event type name -> (payload model, handler)."""
        return {p.TYPE: (p, h) for p, h in self.handlers.items()}

    def register(self) -> None:
        """Declare one FastStream subscriber for all the service's topics.

        One consumer per service process (not one per topic): every member of a
        consumer group joining separately would rebalance the group each time.
        """
        by_type = self.by_type()
        topics = self.topics()
        if not topics:
            return
        by_name = {t.name: t for t in topics}
        handled = ", ".join(sorted(p.TYPE for p in self.handlers))
        if self.settings.broker_epoch_file is not None:
            self.resume = Resumer(self.engine, self.service, self.settings, topics)
        # The listener needs the subscriber (its consumer exists once it starts).
        holder: list[Any] = []
        subscriber = self.broker.subscriber(
            *by_name,
            group_id=f"{self.settings.consumer_group_prefix}.{self.service}",
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.ACK,
            # Batches: one transaction (a savepoint per message) for everything
            # one fetch returned, which is what makes bursts and replays fast.
            batch=True,
            max_records=self.settings.consumer_batch_size,
            session_timeout_ms=self.settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=min(3000, self.settings.consumer_session_timeout_ms // 3),
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            decoder=_undecoded,
            title=f"{self.service}:consumer",
            description=f"{self.service} applies {handled} from {', '.join(by_name)}.",
            listener=self.resume.listener(_Late(holder)) if self.resume is not None else None,
        )
        holder.append(subscriber)

        async def entry(message: KafkaMessage) -> None:
            await self.process_batch([(by_name[r.topic], r) for r in message.raw_message], by_type)

        entry.__name__ = f"{self.service}_consumer"
        subscriber(entry)

    async def process(
        self,
        topic: Topic,
        body: bytes,
        raw: Any,
        by_type: Mapping[str, tuple[type[Payload], Handler]],
    ) -> None:
        """Apply one message (public so tests can drive it without a broker)."""
        await self._apply([self._parse(topic, body, raw, by_type)])

    async def process_batch(
        self,
        records: Sequence[tuple[Topic, Any]],
        by_type: Mapping[str, tuple[type[Payload], Handler]],
    ) -> None:
        """Apply what one fetch returned, in order, in one transaction."""
        items = [self._parse(t, r.value or b"", r, by_type) for t, r in records]
        progress = self.resume.progress(r for _, r in records) if self.resume else None
        await self._apply(items, progress)
        if progress is not None and self.resume is not None:
            self.resume.committed(progress)

    async def apply_stored(self, letters: Sequence[StoredDeadLetter]) -> list[Replayed]:
        """Feed kept dead letters through the consumer again (same handlers, same inbox,
        one transaction with savepoints as for a fetched batch) and record, on each,
        what became of it. A letter that fails again is not kept twice nor published
        to the dead-letter topic again: its row says so."""
        by_type = self.by_type()
        topics = {t.name: t for t in TOPICS}
        items = []
        for letter in letters:
            raw = StoredRecord(
                letter.topic,
                letter.partition,
                letter.offset,
                letter.key,
                letter.body,
                tuple(letter.headers),
            )
            item = self._parse(topics[letter.topic], letter.body, raw, by_type)
            item.letter = letter.id
            items.append(item)
        await self._apply(items)
        return [
            Replayed(i.letter, "dead_lettered" if i.dead else i.outcome, i.dead)
            for i in items
            if i.letter is not None
        ]

    def _parse(
        self,
        topic: Topic,
        body: bytes,
        raw: Any,
        by_type: Mapping[str, tuple[type[Payload], Handler]],
    ) -> _Item:
        try:
            envelope = RawEnvelope.model_validate_json(body)
        except ValidationError as exc:
            return _Item(topic, body, raw, dead=f"not a valid envelope: {_errors(exc)}")
        item = self._parse_envelope(topic, body, raw, envelope, by_type)
        item.event_id, item.type = envelope.event_id, envelope.type
        return item

    def _parse_envelope(
        self,
        topic: Topic,
        body: bytes,
        raw: Any,
        envelope: RawEnvelope,
        by_type: Mapping[str, tuple[type[Payload], Handler]],
    ) -> _Item:
        entry = by_type.get(envelope.type)
        if entry is None:
            return _Item(topic, body, raw)  # not ours: producers may add types at any time
        model, handler = entry
        try:
            # Read, not taken in: see ``contracts.email`` for what that changes.
            payload = model.model_validate(envelope.data, context=READING)
        except ValidationError as exc:
            return _Item(
                topic, body, raw, dead=f"{envelope.type} v{envelope.version}: {_errors(exc)}"
            )
        ignored = self.ignored.get(model)
        if ignored is not None and ignored(payload):
            return _Item(topic, body, raw, envelope=envelope, payload=payload)
        return _Item(topic, body, raw, envelope=envelope, payload=payload, handler=handler)

    async def _apply(self, items: list[_Item], progress: Progress | None = None) -> None:
        """Apply the items; a dependency outage retries the whole batch, for ever."""
        delay = 0.1
        while True:
            try:
                await self._apply_once(items, progress)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("consumer waiting for a dependency", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        failed = [i for i in items if i.failed and i.dead is not None]
        if failed and not self.dead_letter:
            # A replay must not switch to a model missing what the live one applied.
            raise ReplayFailed(f"{len(failed)} message(s) could not be applied: {failed[0].dead}")
        for item in items:
            if item.letter is not None:
                continue  # a replay: its outcome is on its row, it is not dead-lettered again
            type_ = item.envelope.type if item.envelope is not None else "(unreadable)"
            if item.dead is not None:
                self._count(item.topic, type_, "dead_lettered")
                await self._dead_letter(item.topic, item.body, item.raw, item.dead)
            else:
                self._count(item.topic, type_, item.outcome)

    async def _apply_once(self, items: list[_Item], progress: Progress | None) -> None:
        for item in items:
            if item.handler is not None:  # a retried batch: what an attempt found is moot
                item.dead, item.failed, item.outcome = None, False, "skipped"
        try:
            await self._apply_fast(items, progress)
        except Exception as exc:
            if is_transient(exc):
                raise
            # Someone in the batch is bad (or unlucky): find out who, one by one.
            log.warning("batch failed, applying it message by message", error=repr(exc))
            await self._apply_each(items, progress)

    async def _settle(
        self, conn: AsyncConnection, items: list[_Item], progress: Progress | None
    ) -> None:
        """In the batch's transaction: keep its dead letters, record what replays made of
        kept ones, and move the partitions' resume points."""
        if self.dead_letter:
            letters = [i.dead_letter() for i in items if i.dead is not None and i.letter is None]
            await dead_letter_store.record(conn, self.service, letters)
        for item in items:
            if item.letter is not None:
                outcome = "dead_lettered" if item.dead is not None else item.outcome
                await dead_letter_store.record_replay(conn, item.letter, outcome, item.dead)
        if progress is not None and self.resume is not None:
            await self.resume.save(conn, progress)

    def _bookkeeping(self, items: list[_Item], progress: Progress | None) -> bool:
        """Whether a batch with nothing to apply still has something to write."""
        return bool(progress and progress.moves) or any(
            i.letter is not None or (i.dead is not None and self.dead_letter) for i in items
        )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A batch's transaction; a connection found in a bad state is not pooled again."""
        async with self.engine.connect() as conn:
            try:
                async with conn.begin():
                    yield conn
            except DBAPIError as exc:
                if _sqlstate_class(exc) in BROKEN_CONNECTION_CLASSES:
                    await conn.invalidate()
                raise

    async def _apply_fast(self, items: list[_Item], progress: Progress | None) -> None:
        """Claim the batch in one statement, apply it without savepoints, commit once."""
        todo = [i for i in items if i.handler is not None and i.envelope is not None]
        if not todo and not self._bookkeeping(items, progress):
            return
        callbacks: list[Callable[[], None]] = []
        # The batch's events go to the outbox together, in the order they were
        # emitted: one round trip, written before a batch handler's run (whose
        # handler writes its own) so that order holds across the two.
        rows: list[dict[str, Any]] = []
        written = 0
        async with self._transaction() as conn:
            ids = [i.envelope.event_id for i in todo if i.envelope is not None]
            fresh = await claim_many(conn, self.service, ids) if ids else set()
            run: list[_Item] = []
            for item in todo:
                envelope = item.envelope
                assert envelope is not None and item.handler is not None
                if envelope.event_id not in fresh:
                    item.outcome = "duplicate"
                    continue
                fresh.discard(envelope.event_id)  # a repeat inside the batch is a duplicate
                item.outcome = "applied"
                if self.batch_handler is not None and type(item.payload) in self.batch_types:
                    run.append(item)
                    continue
                if run:
                    written += await write_outbox(conn, rows)
                    rows.clear()
                    await self._flush_run(conn, run)
                uow = UnitOfWork.joined(
                    conn,
                    self.service,
                    correlation_id=envelope.correlation_id,
                    causation_id=str(envelope.event_id),
                )
                token = correlation_id.set(envelope.correlation_id)
                try:
                    # Taken inside the span: the events it emits carry its context.
                    with self._span(item) as span:
                        await item.handler(uow, envelope, item.payload)
                        rows.extend(uow.outbox_rows())
                        record_outcome(span, item.outcome)
                finally:
                    correlation_id.reset(token)
                callbacks.extend(uow.take_callbacks())
            written += await write_outbox(conn, rows)
            await self._flush_run(conn, run)
            await self._settle(conn, items, progress)
            if written:
                await notify_relay(conn)
        for callback in callbacks:
            callback()

    async def _flush_run(self, conn: AsyncConnection, run: list[_Item]) -> None:
        if run:
            assert self.batch_handler is not None
            with contextlib.ExitStack() as stack:
                spans = []
                carriers: dict[uuid.UUID, dict[str, str]] = {}
                for i in run:
                    spans.append(stack.enter_context(self._span(i)))
                    carrier = outbox_headers()  # this message's span, current just now
                    if carrier and i.envelope is not None:
                        carriers[i.envelope.event_id] = carrier
                with run_carriers(carriers):
                    await self.batch_handler(
                        conn, [(i.envelope, i.payload) for i in run if i.envelope is not None]
                    )
                for span in spans:
                    record_outcome(span, "applied")
            run.clear()

    async def _apply_each(self, items: list[_Item], progress: Progress | None) -> None:
        """The careful path: every message under its own savepoint, bad ones set aside."""
        callbacks: list[Callable[[], None]] = []
        written = 0
        async with self._transaction() as conn:
            for item in items:
                if item.handler is None or item.envelope is None:
                    continue
                with self._span(item) as span:
                    written += await self._apply_item(conn, item, callbacks)
                    record_outcome(span, item.outcome, item.dead)
            await self._settle(conn, items, progress)
            if written:
                await notify_relay(conn)
        for callback in callbacks:
            callback()

    async def _apply_item(
        self, conn: AsyncConnection, item: _Item, callbacks: list[Callable[[], None]]
    ) -> int:
        """One message under its own savepoint; bounded retries, then the dead-letter topic."""
        assert item.envelope is not None and item.handler is not None
        envelope = item.envelope
        token = correlation_id.set(envelope.correlation_id)
        try:
            for attempt in range(1, self.settings.handler_max_attempts + 1):
                uow = UnitOfWork.joined(
                    conn,
                    self.service,
                    correlation_id=envelope.correlation_id,
                    causation_id=str(envelope.event_id),
                )
                savepoint = await conn.begin_nested()
                try:
                    if not await uow.claim(self.service, envelope.event_id):
                        await savepoint.commit()
                        item.outcome = "duplicate"
                        return 0
                    await item.handler(uow, envelope, item.payload)
                    written = await uow.flush()
                    await savepoint.commit()
                    callbacks.extend(uow.take_callbacks())
                    item.dead = None
                    item.outcome = "applied"
                    return written
                except DeadLetter as exc:
                    await savepoint.rollback()
                    item.dead = str(exc)
                    return 0
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    await savepoint.rollback()
                    if self.metrics is not None:
                        self.metrics.handler_errors.labels(self.service, envelope.type).inc()
                    log.warning(
                        "handler failed", type=envelope.type, error=repr(exc), attempt=attempt
                    )
                    item.dead = f"handler failed: {exc!r}"
                    item.failed = True
                    await asyncio.sleep(0.05 * 2**attempt)
            log.error("handler gave up", type=envelope.type, event_id=str(envelope.event_id))
            return 0
        finally:
            correlation_id.reset(token)

    async def _dead_letter(self, topic: Topic, body: bytes, raw: Any, reason: str) -> None:
        if not self.dead_letter:
            log.warning("skipping an unreadable message", topic=topic.name, reason=reason)
            return
        log.error("dead-lettering a message", topic=topic.name, reason=reason)
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.service, topic.name).inc()
        headers = {
            "x-dlq-reason": reason[:2000],
            "x-original-topic": topic.name,
            "x-consumer": self.service,
        }
        key = None
        if raw is not None:
            headers["x-original-partition"] = str(getattr(raw, "partition", ""))
            headers["x-original-offset"] = str(getattr(raw, "offset", ""))
            key = getattr(raw, "key", None)
        headers.update(record_dead_letter(topic.name, raw, reason, consumer=self.service))
        while True:
            try:
                await self.broker.publish(body, topic=topic.dlq, key=key, headers=headers)
                return
            except Exception as exc:
                log.warning("dead-letter publish failed, retrying", error=repr(exc))
                await asyncio.sleep(1.0)

    def after_reset(self) -> None:
        """The embedded broker was reset: position every partition held now again, from
        its resume point where the new broker still has it (see ``runtime.resume``)."""
        if self.resume is not None:
            self.resume.after_reset()

    async def start_over(self, *, timeout: float = 60.0) -> None:
        """Read every topic again from the beginning (a rebuilt read model).

        With resume points (embedded broker) they are dropped (they describe the model
        that was replaced) and each partition is positioned again, which finds none and
        starts from the beginning. Otherwise each consumer is sought to the beginning as
        soon as it has partitions again.
        """
        if self.resume is not None:
            await self.resume.start_over()
            return
        pending = [
            consumer
            for subscriber in self.broker.subscribers
            if (consumer := getattr(subscriber, "consumer", None)) is not None
        ]
        deadline = asyncio.get_running_loop().time() + timeout
        while pending:
            waiting = []
            for consumer in pending:
                try:
                    assigned = consumer.assignment()
                    if not assigned:
                        waiting.append(consumer)
                        continue
                    await consumer.seek_to_beginning(*assigned)
                    log.info("reading again from the beginning", partitions=len(assigned))
                except Exception as exc:  # mid-rebalance: try again in a moment
                    log.info("cannot seek yet", error=repr(exc))
                    waiting.append(consumer)
            pending = waiting
            if pending:
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("no partitions to read again from the beginning")
                    return
                await asyncio.sleep(0.2)


class _Late:
    """The subscriber, once ``register`` has it (its listener is made before it exists)."""

    def __init__(self, holder: list[Any]) -> None:
        self._holder = holder

    @property
    def consumer(self) -> Any:
        return getattr(self._holder[0], "consumer", None) if self._holder else None


async def _undecoded(message: Any) -> None:
    """FastStream's decoder, replaced: ``entry`` reads the raw records itself (one
    envelope parse each), where FastStream would build a message object and parse
    the JSON of every record of the batch first, for nothing."""
    return None


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
    )
