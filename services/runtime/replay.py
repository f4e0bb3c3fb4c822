"""Read a consumer's topics from the beginning, outside any consumer group.

Used to rebuild a read model: the records go through the consumer's own
``process_batch`` (the same handlers, inbox and fold as live consumption), so a
rebuilt model is what live consumption would have made.

Where "the end" is: past the end offsets seen at the start *and* nothing new for
``idle_s``. The end offsets alone are not enough on Tansu (after a multi-record
batch it reports a lower end than the real one); events that arrive later are
picked up by the live consumer after the switch, which reads from the beginning
again and skips, through the inbox, what the replay applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from .consumer import Consumer
from .kafka_security import client_options
from .logging import get_logger
from .settings import ServiceSettings

log = get_logger(__name__)

Progress = Callable[[int, float], None]


@dataclass(frozen=True)
class ReplayCount:
    """How much a replay read and how long it took."""

    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Records applied per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def read_from_beginning(
    consumer: Consumer,
    settings: ServiceSettings,
    *,
    idle_s: float = 2.0,
    max_records: int = 2000,
    progress: Progress | None = None,
) -> ReplayCount:
    """Apply every record of the consumer's topics, oldest first, until caught up."""
    kafka = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_options(settings),
    )
    try:
        await kafka.start()
        topics = {t.name: t for t in consumer.topics()}
        partitions = [
            TopicPartition(t.name, p) for t in topics.values() for p in range(t.partitions)
        ]
        kafka.assign(partitions)
        await kafka.seek_to_beginning(*partitions)
        ends = await kafka.end_offsets(partitions)
        by_type = consumer.by_type()
        started = last_record = time.monotonic()
        total = 0
        applying = 0.0
        while True:
            fetched = await kafka.getmany(timeout_ms=200, max_records=max_records)
            records = [r for batch in fetched.values() for r in batch]
            now = time.monotonic()
            if records:
                await consumer.process_batch([(topics[r.topic], r) for r in records], by_type)
                total += len(records)
                last_record = time.monotonic()
                applying += last_record - now
                if progress is not None:
                    progress(total, now - started)
                continue
            if now - last_record < idle_s:
                continue
            positions = [await kafka.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
        seconds = last_record - started if total else time.monotonic() - started
        log.info(
            "replay read everything",
            records=total,
            seconds=round(seconds, 2),
            applying_s=round(applying, 2),  # the rest is fetching
        )
        return ReplayCount(total, seconds)
    finally:
        await kafka.stop()
