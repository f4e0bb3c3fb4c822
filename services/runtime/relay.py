"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One relay per service database publishes at a time (a PostgreSQL advisory
lock elects it), so every replica may run one and order per key holds. Rows
are published in id order and marked only up to the first failure, so a
broker outage holds events back until it ends, and nothing is skipped.

On the embedded (memory-only) broker the outbox is the durable log. When the
stack's supervisor starts a new broker it blanks the epoch file, starts it,
creates the topics and writes a new epoch; the relay holds back while the file
is blank, then *republishes* its retained rows: every row in id order, new ones
included, from a cursor kept in ``relay_state`` (no row is rewritten), then
goes back to publishing what is unpublished. One publisher in id order with the
same keys puts every row in the partition and at the offset it had on the old
broker (unless something else wrote to the topic), which is what lets consumers
trust their resume points (``runtime.resume_rules``). When the refill is done
it writes ``<epoch file>.republished.<service>`` with the epoch, so consumers
know that a record not there by then will not come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import RecordMetadata
from sqlalchemy import Row, Select, Text, cast, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .kafka_admin import ensure_topics
from .kafka_security import client_options
from .logging import get_logger
from .loops import keep_running
from .messaging_tables import outbox, relay_state
from .metrics import Metrics
from .resume_rules import Refill
from .settings import ServiceSettings
from .tracing import PublishSpans
from .uow import NOTIFY_CHANNEL, notify_relay

log = get_logger(__name__)

RELAY_LOCK = 0x0B0B_0001
ResetCallback = Callable[[], Awaitable[None]]


def read_epoch(path: Path | None) -> str | None:
    """The broker epoch the stack supervisor wrote, or None on a durable broker."""
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def broker_replacing(path: Path | None) -> bool:
    """The supervisor is replacing the broker: the epoch file is there but blank."""
    if path is None:
        return False
    try:
        return not path.read_text().strip()
    except FileNotFoundError:
        return False


def republished_marker(epoch_file: Path, service: str) -> Path:
    """Where ``service``'s relay says which broker epoch it has refilled."""
    return epoch_file.with_name(f"{epoch_file.name}.republished.{service}")


def write_republished(epoch_file: Path, service: str, refill: Refill) -> None:
    """Say that ``service``'s relay has refilled the broker of ``refill.epoch``, and how far."""
    ends = {f"{t}/{p}": end for (t, p), end in sorted((refill.ends or {}).items())}
    doc = json.dumps({"epoch": refill.epoch, "ends": ends}, separators=(",", ":"))
    write_epoch(republished_marker(epoch_file, service), doc)


def read_republished(epoch_file: Path, service: str) -> Refill | None:
    """What ``service``'s relay last said it refilled (None: nothing yet, or unreadable)."""
    text = read_epoch(republished_marker(epoch_file, service))
    if text is None:
        return None
    try:
        doc = json.loads(text)
        ends = {
            (topic, int(partition)): int(end)
            for key, end in (doc.get("ends") or {}).items()
            for topic, _, partition in [key.rpartition("/")]
        }
        return Refill(str(doc["epoch"]), ends)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def write_epoch(path: Path, epoch: str) -> None:
    """Write ``epoch`` atomically (readers never see a half-written file); "" blanks it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(epoch + "\n")
    os.replace(tmp, path)


async def adopt_epoch(engine: AsyncEngine, epoch: str | None) -> bool:
    """Record ``epoch``; if it differs from the recorded one, start republishing.

    Returns True when the broker was found reset. Safe to call from every replica:
    the compare-and-set makes exactly one of them start the refill (its cursor is in
    ``relay_state``, so whoever leads the relay goes on with it).
    """
    if epoch is None:
        return False
    async with engine.begin() as conn:
        current = (
            await conn.execute(
                select(relay_state.c.broker_epoch)
                .where(relay_state.c.name == "relay")
                .with_for_update()
            )
        ).scalar_one_or_none()
        if current == epoch:
            return False
        # First start on this database: nothing was ever published, nothing to refill.
        resend_after = None if current is None else 0
        await conn.execute(
            pg_insert(relay_state)
            .values(name="relay", broker_epoch=epoch, resend_after=resend_after)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"broker_epoch": epoch, "resend_after": resend_after},
            )
        )
        if current is None:
            return False
        await notify_relay(conn)
        log.warning("broker reset detected: republishing the retained outbox", epoch=epoch)
        return True


async def resend_cursor(engine: AsyncEngine) -> int | None:
    """Where the refill of a reset broker stands (None: not refilling)."""
    async with engine.connect() as conn:
        value: int | None = (
            await conn.execute(
                select(relay_state.c.resend_after).where(relay_state.c.name == "relay")
            )
        ).scalar_one_or_none()
        return value


class OutboxRelay:
    """Runs until cancelled: ``asyncio.create_task(relay.run())``."""

    def __init__(
        self, engine: AsyncEngine, settings: ServiceSettings, metrics: Metrics | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._metrics = metrics
        self._wakeup = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self.published = 0
        # How far this process's refill of the current broker wrote each partition (kept
        # across restarts of the loop; a refill another process began is partly unknown,
        # which makes consumers read those partitions from the beginning).
        self._refill = Refill("", {})

    async def run(self) -> None:
        """Elect, publish, repeat; survives database and broker outages."""
        await keep_running(self._lead, what="outbox relay", recover=self._recover)

    async def _lead(self) -> None:
        async with self._leadership():
            await self._serve()

    async def _recover(self) -> None:
        await self._close_producer()
        if self._settings.kafka_create_topics:
            # A broker that came back empty would otherwise auto-create the
            # topics on our first send, with its default partition count.
            with contextlib.suppress(Exception):
                await ensure_topics(
                    self._settings.kafka_bootstrap_servers, **client_options(self._settings)
                )

    async def stop(self) -> None:
        """Close the producer (the task itself is cancelled by its owner)."""
        await self._close_producer()

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[None]:
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            # Another replica is the relay: stand by until it goes away.
            while not await driver.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(1.0)
            await driver.add_listener(NOTIFY_CHANNEL, self._on_notify)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(NOTIFY_CHANNEL, self._on_notify)
                    await driver.fetchval("SELECT pg_advisory_unlock($1)", RELAY_LOCK)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def _serve(self) -> None:
        last_cleanup = datetime.min.replace(tzinfo=UTC)
        adopted: str | None = None
        announced: str | None = None
        epoch_file = self._settings.broker_epoch_file
        cursor = await resend_cursor(self._engine)
        while True:
            if broker_replacing(epoch_file):
                # A new broker is on its way: what we sent now would land before the
                # refill and shift every offset after it.
                await asyncio.sleep(0.1)
                continue
            # The file is cheap to read; the database is asked only when it changed.
            epoch = read_epoch(epoch_file)
            if epoch is not None and epoch != adopted:
                if adopted is not None:
                    await self._close_producer()  # a new broker: its metadata afresh
                await adopt_epoch(self._engine, epoch)
                adopted = epoch
                cursor = await resend_cursor(self._engine)
                if self._refill.epoch != epoch:
                    self._refill = Refill(epoch, {})
            self._wakeup.clear()
            if cursor is not None:
                sent, cursor = await self._republish_batch(cursor)
            else:
                sent = await self._publish_batch()
            if cursor is None and epoch_file is not None and adopted not in (None, announced):
                assert adopted is not None
                said = read_republished(epoch_file, self._service)
                # A process that did not refill (it started after) keeps what the one
                # that did said, extents included.
                if self._refill.ends or said is None or said.epoch != adopted:
                    write_republished(epoch_file, self._service, self._refill)
                    log.info("outbox republished to the broker", epoch=adopted)
                announced = adopted
            if datetime.now(UTC) - last_cleanup > timedelta(hours=1):
                await self._cleanup()
                last_cleanup = datetime.now(UTC)
            if sent == 0 and cursor is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), self._settings.outbox_poll_interval_s
                    )

    @property
    def _service(self) -> str:
        return self._settings.service_name

    async def _producer_ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap_servers,
                client_id=f"{self._settings.service_name}-relay",
                acks="all",
                linger_ms=2,
                request_timeout_ms=5000,
                # Tansu's memory store rejects InitProducerId; duplicates are
                # harmless anyway because every consumer dedupes on event_id.
                enable_idempotence=False,
                **client_options(self._settings),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def _acks(self, futures: Sequence[asyncio.Future[Any]]) -> list[Any]:
        """Wait for the broker's acknowledgements, each or its failure.

        If the supervisor starts replacing the broker meanwhile, what is not
        acknowledged is dropped, unsent: the producer would deliver it to the new
        broker ahead of the refill, and every offset after it would shift (consumers
        would then read those partitions from the beginning). Those rows stay
        unpublished, and go out in their turn.
        """
        waiting: asyncio.Future[list[Any]] = asyncio.ensure_future(
            asyncio.gather(*futures, return_exceptions=True)
        )
        epoch_file = self._settings.broker_epoch_file
        if epoch_file is None:
            return await waiting
        sent_under = read_epoch(epoch_file)
        while True:
            done, _ = await asyncio.wait([waiting], timeout=0.1)
            if done:
                return waiting.result()
            if broker_replacing(epoch_file) or read_epoch(epoch_file) != sent_under:
                log.warning("the broker is being replaced: dropping unacknowledged sends")
                await self._abandon_producer()
                waiting.cancel()
                return [_ack(f) for f in futures]

    async def _abandon_producer(self) -> None:
        """Stop the producer without delivering what it still holds: its sender is
        stopped (aiokafka has no public way to drop what a producer holds)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sender.close(), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 2.0)

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()

    def _rows(self) -> Select[Any]:
        return select(
            outbox.c.id,
            outbox.c.topic,
            outbox.c.key,
            # The stored JSON as PostgreSQL writes it: published as it is,
            # not decoded into Python and encoded again for every event.
            cast(outbox.c.envelope, Text).label("body"),
            outbox.c.event_id,
            outbox.c.type,
            outbox.c.headers,
            outbox.c.created_at,
            outbox.c.published_at,
        ).order_by(outbox.c.id)

    async def _publish_batch(self) -> int:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    self._rows()
                    .where(outbox.c.published_at.is_(None))
                    .limit(self._settings.outbox_batch_size)
                )
            ).all()
        if not rows:
            return 0
        sent, failure = await self._send(rows)
        done = [row for row, _ in sent]
        if done:
            async with self._engine.begin() as conn:
                await self._mark_published(conn, done)
        if failure is not None:
            raise failure
        return len(done)

    async def _republish_batch(self, cursor: int) -> tuple[int, int | None]:
        """The next rows after ``cursor`` in id order, published or not; sent and the new
        cursor (None once every row has been sent again)."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    self._rows()
                    .where(outbox.c.id > cursor)
                    .limit(self._settings.outbox_republish_batch_size)
                )
            ).all()
        if not rows:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(relay_state)
                    .where(relay_state.c.name == "relay")
                    .values(resend_after=None)
                )
            # Rows that committed late with an id the cursor had passed are still
            # unpublished: the normal path sends them now.
            return 0, None
        sent, failure = await self._send(rows)
        done = [row for row, _ in sent]
        ends = dict(self._refill.ends or {})
        for row, meta in sent:
            key = (row.topic, meta.partition)
            ends[key] = max(ends.get(key, 0), meta.offset + 1)
        self._refill = Refill(self._refill.epoch, ends)
        if done:
            async with self._engine.begin() as conn:
                await self._mark_published(conn, [r for r in done if r.published_at is None])
                await conn.execute(
                    update(relay_state)
                    .where(relay_state.c.name == "relay")
                    .values(resend_after=done[-1].id)
                )
        if failure is not None:
            raise failure
        return len(done), done[-1].id

    async def _mark_published(self, conn: AsyncConnection, rows: Sequence[Row[Any]]) -> None:
        if rows:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(published_at=datetime.now(UTC))
            )

    async def _send(
        self, rows: Sequence[Row[Any]]
    ) -> tuple[list[tuple[Row[Any], RecordMetadata]], BaseException | None]:
        """Send the rows in order; those acknowledged before the first failure (with where
        the broker put them), and the failure."""
        producer = await self._producer_ready()
        futures = []
        now = datetime.now(UTC)
        with PublishSpans() as spans:
            for row in rows:
                if row.published_at is None:
                    # The trace context stored with the row, as a producer span's context.
                    trace_headers = spans.headers(
                        row.topic,
                        {"event_id": str(row.event_id), "type": row.type, "key": row.key},
                        row.headers,
                        waited_s=(now - row.created_at).total_seconds(),
                    )
                else:
                    trace_headers = spans.again(row.headers)  # a refill: no new span
                futures.append(
                    await producer.send(
                        row.topic,
                        value=row.body.encode(),
                        key=row.key.encode(),
                        headers=[
                            ("type", row.type.encode()),
                            ("event_id", str(row.event_id).encode()),
                            ("content-type", b"application/json"),
                            *trace_headers,
                        ],
                    )
                )
            results = await self._acks(futures)
            spans.settle(results)
        done: list[tuple[Row[Any], RecordMetadata]] = []
        failure: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failure = result
                break
            done.append((row, result))
        self.published += len(done)
        if self._metrics is not None:
            for topic, count in Counter(row.topic for row, _ in done).items():
                self._metrics.produced.labels(self._settings.service_name, topic).inc(count)
        return done, failure

    async def _cleanup(self) -> None:
        days = self._settings.outbox_retention_days
        if days is None:
            return
        cutoff = datetime.now(UTC) - timedelta(days=days)
        async with self._engine.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.published_at < cutoff))


def _ack(future: asyncio.Future[Any]) -> Any:
    """A send's acknowledgement, or why there is none (a dropped send: the broker left)."""
    if future.done() and not future.cancelled():
        return future.exception() or future.result()
    return KafkaConnectionError("not acknowledged before the broker was replaced")


async def backlog(engine: AsyncEngine) -> tuple[int, float | None]:
    """Unpublished rows and the age in seconds of the oldest one."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*), extract(epoch FROM now() - min(created_at)) "
                    "FROM outbox WHERE published_at IS NULL"
                )
            )
        ).one()
    return int(row[0]), (float(row[1]) if row[1] is not None else None)
