"""Positions a consumer's partitions from its resume points on the embedded broker.

On the memory-only broker a reset loses every topic and every committed offset; the
relays refill the topics from their outboxes (``runtime.relay``). Reading them all
again would make recovery grow with history, so each consumer keeps its own resume
points (``resume_store``) and, whenever it is given partitions (a start, a rebalance)
or learns that the broker was reset (a new epoch), positions each one itself:

1. the partition is paused, so nothing is read from wherever Kafka would start;
2. with no stored point it is read from the beginning;
3. otherwise a probe reads the record at ``next_offset - 1``, waiting while the
   topic's owner is still republishing; if it carries the stored mark the consumer
   seeks to ``next_offset``, if it does not (or never comes) from the beginning
   (``resume_rules.decide``);
4. the partition is resumed, *anchored*: from then on each batch that follows the
   anchor without a gap, under the same epoch, moves the stored point in its
   transaction (``resume_rules.advances``).

With a durable broker (no epoch file) none of this runs: the consumer group's
committed offsets are the resume point, as Kafka means them to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.topics import EXTERNAL_OWNERS, Topic

from . import resume_store
from .kafka_security import client_options
from .logging import get_logger
from .relay import broker_replacing, read_epoch, read_republished
from .resume_rules import (
    Anchor,
    Position,
    Refill,
    Seen,
    Start,
    advances,
    decide,
    expect,
    mark_of,
)
from .resume_rules import TopicPartition as Key
from .settings import ServiceSettings

log = get_logger(__name__)


def _key(tp: TopicPartition) -> Key:
    return (tp.topic, tp.partition)


@dataclass(frozen=True)
class Progress:
    """What one batch moves: per partition the anchor it followed and the new position."""

    moves: Mapping[Key, tuple[Anchor, Position]]


class Resumer:
    """The resume points of one consumer (one per service process)."""

    def __init__(
        self,
        engine: AsyncEngine,
        consumer: str,
        settings: ServiceSettings,
        topics: Sequence[Topic],
    ) -> None:
        assert settings.broker_epoch_file is not None, "resume points need the epoch file"
        self._engine = engine
        self._consumer = consumer
        self._settings = settings
        self._epoch_file = settings.broker_epoch_file
        self._owners = {t.name: t.owner for t in topics}
        self._anchors: dict[Key, Anchor] = {}
        self._pending: set[TopicPartition] = set()
        self._task: asyncio.Task[None] | None = None
        self._kafka: Any = None  # the group's AIOKafkaConsumer, once it is running

    # ---- what the consumer's batches do ------------------------------------------

    def progress(self, records: Iterable[Any]) -> Progress:
        """The positions a fetched batch will record, if it commits."""
        anchors = dict(self._anchors)
        seen = [Seen(r.topic, r.partition, r.offset, r.value or b"") for r in records]
        moved = advances(anchors, read_epoch(self._epoch_file), seen)
        return Progress({tp: (anchors[tp], position) for tp, position in moved.items()})

    async def save(self, conn: AsyncConnection, progress: Progress) -> None:
        """Write the batch's positions in its transaction (those whose anchor still holds:
        a partition positioned again meanwhile starts from its new anchor)."""
        current = {
            tp: position
            for tp, (anchor, position) in progress.moves.items()
            if self._anchors.get(tp) is anchor
        }
        await resume_store.save(conn, self._consumer, current)

    def committed(self, progress: Progress) -> None:
        """The batch committed: its partitions are anchored after it."""
        for tp, (anchor, position) in progress.moves.items():
            if self._anchors.get(tp) is anchor:
                self._anchors[tp] = Anchor(anchor.epoch, position.next_offset)

    # ---- when partitions come and go, and after a reset ---------------------------

    def listener(self, subscriber: Any) -> ConsumerRebalanceListener:
        """The rebalance listener that positions every partition the group assigns."""
        return _Listener(self, subscriber)

    def assigned(self, kafka: Any, partitions: Collection[TopicPartition]) -> None:
        """Partitions given to this consumer: position them before reading any."""
        self._kafka = kafka
        self._position(partitions)

    def revoked(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions taken away: forget their anchors."""
        for tp in partitions:
            self._anchors.pop(_key(tp), None)
        self._pending -= set(partitions)

    def after_reset(self) -> None:
        """The broker was reset: position every partition held now again."""
        if self._kafka is not None:
            self._position(self._kafka.assignment())

    async def close(self) -> None:
        """Stop positioning (the service is stopping)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def start_over(self) -> None:
        """Read every partition held now from the beginning (a rebuilt read model: the
        stored points describe the model that was replaced)."""
        # No batch records a position from now on (its anchor is gone) until each
        # partition is placed again, after the stored points are dropped.
        self._anchors.clear()
        await resume_store.forget(self._engine, self._consumer)
        self.after_reset()

    def _position(self, partitions: Collection[TopicPartition]) -> None:
        kafka = self._kafka
        if kafka is None:
            return
        held = set(kafka.assignment())
        wanted = (self._pending | set(partitions)) & held
        if not wanted:
            return
        for tp in wanted:
            self._anchors.pop(_key(tp), None)
        kafka.pause(*wanted)
        self._pending = wanted
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._run(kafka, wanted), name="resume-points")

    async def _run(self, kafka: Any, partitions: set[TopicPartition]) -> None:
        delay = 0.2
        while True:
            try:
                await self._place(kafka, partitions)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or the broker is away: try again
                log.warning("cannot position partitions yet", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                partitions = partitions & self._pending

    async def _place(self, kafka: Any, partitions: set[TopicPartition]) -> None:
        # A new broker is starting (the file is blank until it has its topics): its
        # epoch comes next, and a file is all there is to watch.
        while broker_replacing(self._epoch_file):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        epoch = read_epoch(self._epoch_file)
        keys = [_key(p) for p in partitions]
        stored = await resume_store.load(self._engine, self._consumer, keys)
        probe = {tp: stored[_key(tp)] for tp in partitions if _key(tp) in stored}
        await self._from_beginning(kafka, [tp for tp in partitions if tp not in probe], epoch)
        if probe:
            await self._probe(kafka, probe, epoch)

    async def _from_beginning(
        self, kafka: Any, partitions: Sequence[TopicPartition], epoch: str | None
    ) -> None:
        if not partitions:
            return
        offsets: dict[TopicPartition, int] = await kafka.beginning_offsets(list(partitions))
        for tp in partitions:
            self._settle(kafka, tp, Anchor(epoch, offsets[tp]))
        log.info("reading partitions from the beginning", partitions=len(partitions))

    def _settle(self, kafka: Any, tp: TopicPartition, anchor: Anchor) -> None:
        if tp not in self._pending:
            return  # revoked, or positioned again by a newer run
        with contextlib.suppress(Exception):  # revoked meanwhile: its next owner places it
            kafka.seek(tp, anchor.next_offset)
            self._anchors[_key(tp)] = anchor
            kafka.resume(tp)
        self._pending.discard(tp)

    def _refill(self, topic: str, epoch: str | None) -> Refill | None:
        owner = self._owners.get(topic)
        if owner is None or owner in EXTERNAL_OWNERS:
            # Nobody of ours refills it: a reset broker has none of what was there.
            return Refill(epoch or "", {})
        return read_republished(self._epoch_file, owner)

    async def _probe(
        self, kafka: Any, stored: dict[TopicPartition, Position], epoch: str | None
    ) -> None:
        """Check the record before each stored point; seek there or start over."""
        settings = self._settings
        probe = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            # One record per partition is all it needs (the broker sends at least one).
            max_partition_fetch_bytes=16 * 1024,
            **client_options(settings),
        )
        await probe.start()
        try:
            probe.assign(list(stored))
            for tp, position in stored.items():
                probe.seek(tp, position.next_offset - 1)
            deadline = time.monotonic() + settings.consumer_resume_wait_s
            undecided = dict(stored)
            resumed = 0
            while undecided:
                refills = {t: self._refill(t, epoch) for t in {tp.topic for tp in undecided}}
                found: dict[TopicPartition, tuple[int, str]] = {}
                try:
                    fetched = await probe.getmany(*undecided, timeout_ms=200)
                except OffsetOutOfRangeError:
                    fetched = {}
                    for tp, position in undecided.items():
                        probe.seek(tp, position.next_offset - 1)
                for tp, records in fetched.items():
                    if records:
                        found[tp] = (records[0].offset, mark_of(records[0].value))
                late = time.monotonic() > deadline
                for tp in list(undecided):
                    expected = expect(_key(tp), undecided[tp], epoch, refills[tp.topic])
                    start = decide(undecided[tp], found.get(tp), expected, timed_out=late)
                    if start is Start.WAIT:
                        continue
                    position = undecided.pop(tp)
                    probe.pause(tp)
                    if start is Start.STORED:
                        self._settle(kafka, tp, Anchor(epoch, position.next_offset))
                        resumed += 1
                        continue
                    log.warning(
                        "resume point not on this broker: reading from the beginning",
                        topic=tp.topic,
                        partition=tp.partition,
                        next_offset=position.next_offset,
                        found=found.get(tp),
                        expected=expected.value,
                        waited_out=late,
                    )
                    await self._from_beginning(kafka, [tp], epoch)
            log.info("partitions resumed from their stored points", partitions=resumed)
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await probe.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands each assignment to the ``Resumer`` (aiokafka calls it inside the rebalance)."""

    def __init__(self, resumer: Resumer, subscriber: Any) -> None:
        self._resumer = resumer
        self._subscriber = subscriber

    # Coroutines: FastStream runs a plain function in a worker thread, away from the
    # consumer's event loop.
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._resumer.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        kafka = getattr(self._subscriber, "consumer", None)
        if kafka is not None and assigned:
            self._resumer.assigned(kafka, assigned)
