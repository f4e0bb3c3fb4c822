"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One relay per service database publishes at a time (a PostgreSQL advisory
lock elects it), so every replica may run one and order per key holds. Rows
are published in id order and marked only up to the first failure, so a
broker outage holds events back until it ends, and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Text, cast, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .kafka_admin import ensure_topics
from .kafka_security import client_options
from .logging import get_logger
from .loops import keep_running
from .messaging_tables import outbox, relay_state
from .metrics import Metrics
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


async def adopt_epoch(engine: AsyncEngine, epoch: str | None) -> bool:
    """Record ``epoch``; if it differs from the recorded one, queue every retained row again.

    Returns True when the broker was found reset. Safe to call from every replica:
    the compare-and-set makes exactly one of them requeue.
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
        await conn.execute(
            pg_insert(relay_state)
            .values(name="relay", broker_epoch=epoch)
            .on_conflict_do_update(index_elements=["name"], set_={"broker_epoch": epoch})
        )
        if current is None:
            return False  # first start on this database: nothing was ever published
        await conn.execute(
            update(outbox).where(outbox.c.published_at.is_not(None)).values(published_at=None)
        )
        await notify_relay(conn)
        log.warning("broker reset detected: republishing the retained outbox", epoch=epoch)
        return True


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
        while True:
            # The file is cheap to read; the database is asked only when it changed.
            epoch = read_epoch(self._settings.broker_epoch_file)
            if epoch is not None and epoch != adopted:
                await adopt_epoch(self._engine, epoch)
                adopted = epoch
            self._wakeup.clear()
            sent = await self._publish_batch()
            if datetime.now(UTC) - last_cleanup > timedelta(hours=1):
                await self._cleanup()
                last_cleanup = datetime.now(UTC)
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), self._settings.outbox_poll_interval_s
                    )

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

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _publish_batch(self) -> int:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
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
                    )
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self._settings.outbox_batch_size)
                )
            ).all()
        if not rows:
            return 0
        producer = await self._producer_ready()
        futures = []
        now = datetime.now(UTC)
        with PublishSpans() as spans:
            for row in rows:
                # The trace context stored with the row, as a producer span's context.
                trace_headers = spans.headers(
                    row.topic,
                    {"event_id": str(row.event_id), "type": row.type, "key": row.key},
                    row.headers,
                    waited_s=(now - row.created_at).total_seconds(),
                )
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
            results = await asyncio.gather(*futures, return_exceptions=True)
            spans.settle(results)
        done: list[int] = []
        failure: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failure = result
                break
            done.append(row.id)
        if done:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(done))
                    .values(published_at=datetime.now(UTC))
                )
            self.published += len(done)
            if self._metrics is not None:
                for topic, count in Counter(row.topic for row in rows[: len(done)]).items():
                    self._metrics.produced.labels(self._settings.service_name, topic).inc(count)
        if failure is not None:
            raise failure
        return len(done)

    async def _cleanup(self) -> None:
        days = self._settings.outbox_retention_days
        if days is None:
            return
        cutoff = datetime.now(UTC) - timedelta(days=days)
        async with self._engine.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.published_at < cutoff))


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
