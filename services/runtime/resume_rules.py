"""Resume points: which records a consumer may skip after the embedded broker was reset.

A consumer keeps, per topic and partition, ``next_offset`` (every record before it
has been handled: applied, skipped or dead-lettered), the *mark* of the record just
before it (its ``event_id``, or a digest of its bytes for a record that is not an
envelope) and the broker epoch whose offsets these are. It writes them in the
transaction that holds the batch's effects, and only for records that follow the
point where it positioned the partition (``advances``).

A reset broker is refilled by the relays, each republishing its retained outbox in
id order into the same partitions (the key decides the partition), so the new
broker's offsets are the old ones as long as nothing else was written to the
partition. The consumer checks that before it trusts a stored point: it seeks to
``next_offset`` only if the record at ``next_offset - 1`` on the new broker carries
the stored mark; otherwise it reads the partition from the beginning (the inbox
makes the repeats harmless). Whether that record is there yet, or ever will be, the
owner's refill says (``expect``). No I/O here: ``runtime.resume`` does it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Position:
    """Every record of a partition before ``next_offset`` has been handled; the one just
    before it has this ``mark``. ``epoch``: the broker epoch whose offsets these are."""

    next_offset: int
    mark: str
    epoch: str | None = None


@dataclass(frozen=True)
class Refill:
    """What a relay says once it has republished its outbox to the broker of ``epoch``:
    per partition, the offset after the last record it wrote there (None: not known,
    another process did part of the refill)."""

    epoch: str
    ends: Mapping[TopicPartition, int] | None


@dataclass(frozen=True)
class Anchor:
    """Where a consumer's reading of a partition was set (a seek, under broker ``epoch``):
    the offset of the next record it expects. Positions are recorded only for records
    that follow an anchor without a gap, under the same epoch."""

    epoch: str | None
    next_offset: int


@dataclass(frozen=True)
class Seen:
    """A record as the position rules read it."""

    topic: str
    partition: int
    offset: int
    value: bytes


def mark_of(value: bytes | None) -> str:
    """What identifies a record across brokers: its envelope's ``event_id``, else the
    SHA-256 of its bytes (``sha256:<hex>``)."""
    body = value or b""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        event_id = doc.get("event_id")
        if isinstance(event_id, str) and event_id:
            return event_id
    return "sha256:" + hashlib.sha256(body).hexdigest()


def advances(
    anchors: Mapping[TopicPartition, Anchor], epoch: str | None, records: Sequence[Seen]
) -> dict[TopicPartition, Position]:
    """The positions a batch lets a consumer record, per partition.

    Only partitions whose records start exactly at their anchor, under the broker epoch
    current now, and only as far as the offsets run without a gap. Anything else (no
    anchor yet, a reset since the anchor was set, records fetched before a seek) is
    applied all the same but moves no position: a position is a promise that nothing
    before it is left unread on *this* broker.
    """
    by_partition: dict[TopicPartition, list[Seen]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), []).append(record)
    out: dict[TopicPartition, Position] = {}
    for tp, seen in by_partition.items():
        anchor = anchors.get(tp)
        if anchor is None or anchor.epoch != epoch:
            continue
        expected = anchor.next_offset
        last: Seen | None = None
        for record in seen:
            if record.offset != expected:
                break
            last = record
            expected += 1
        if last is not None:
            out[tp] = Position(last.offset + 1, mark_of(last.value), anchor.epoch)
    return out


class Start(Enum):
    """Where to read a partition from."""

    STORED = "stored"  # the stored position: the record before it matches
    BEGINNING = "beginning"  # from the first record (the inbox skips what was applied)
    WAIT = "wait"  # not decidable yet: keep looking


class Expect(Enum):
    """Whether the record before a stored position is on the broker now."""

    THERE = "there"  # it is (it may take a fetch or two to come)
    ABSENT = "absent"  # it is not, and will not come
    UNKNOWN = "unknown"  # the topic's owner is still republishing


def expect(
    tp: TopicPartition, stored: Position, epoch: str | None, refill: Refill | None
) -> Expect:
    """Whether the record at ``stored.next_offset - 1`` is on the broker of ``epoch``.

    A position recorded under this epoch names a record of this broker. One from before
    the reset names the old broker's offsets: the owner's refill (``refill``, None until
    it is done for this epoch) says how far it wrote each partition, so whether that
    offset exists now. A refill whose extent is unknown promises nothing.
    """
    if stored.epoch is not None and stored.epoch == epoch:
        return Expect.THERE
    if refill is None or refill.epoch != epoch:
        return Expect.UNKNOWN
    if refill.ends is None:
        return Expect.ABSENT
    return Expect.THERE if stored.next_offset - 1 < refill.ends.get(tp, 0) else Expect.ABSENT


def decide(
    stored: Position | None,
    found: tuple[int, str] | None,
    expected: Expect,
    *,
    timed_out: bool = False,
) -> Start:
    """Where to start reading a partition on a (possibly reset) broker.

    ``found``: the offset and mark of the first record fetched at or after
    ``next_offset - 1`` (None: none yet). Only a record at exactly that offset with the
    stored mark lets the consumer skip ahead; anything else, a record that will not
    come, or waiting too long, reads from the beginning.
    """
    if stored is None:
        return Start.BEGINNING
    if found is not None:
        offset, mark = found
        if offset == stored.next_offset - 1 and mark == stored.mark:
            return Start.STORED
        return Start.BEGINNING
    if expected is Expect.ABSENT or timed_out:
        return Start.BEGINNING
    return Start.WAIT
