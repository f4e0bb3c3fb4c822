"""Resume points and kept dead letters: which positions a batch may record, where a
partition is read from after a reset, how a record is told apart, and what relays and
the supervisor leave in files for consumers (no broker, no database)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import aiokafka.admin.client
import aiokafka.client
import pytest
from aiokafka.protocol.metadata import MetadataRequest_v5

from prodigy_users.runtime.dead_letter_store import NewDeadLetter, decode_headers, encode_headers
from prodigy_users.runtime.kafka_admin import refuse_auto_created_topics
from prodigy_users.runtime.relay import (
    broker_replacing,
    read_epoch,
    read_republished,
    republished_marker,
    write_epoch,
    write_republished,
)
from prodigy_users.runtime.resume_rules import (
    Anchor,
    Expect,
    Position,
    Refill,
    Seen,
    Start,
    advances,
    decide,
    expect,
    mark_of,
)

TOPIC = "membership.events.v1"


def envelope(event_id: uuid.UUID) -> bytes:
    return json.dumps({"event_id": str(event_id), "type": "x", "data": {}}).encode()


def seen(partition: int, *offsets: int, topic: str = TOPIC) -> list[Seen]:
    return [Seen(topic, partition, o, envelope(uuid.UUID(int=o))) for o in offsets]


# -- marks ------------------------------------------------------------------------------


def test_an_envelope_is_known_by_its_event_id() -> None:
    event_id = uuid.uuid4()
    assert mark_of(envelope(event_id)) == str(event_id)


@pytest.mark.parametrize(
    "body",
    [b"this is not json", b"", None, b'{"event_id": 7}', b'["event_id"]', b'{"data": {}}'],
)
def test_anything_else_is_known_by_its_digest(body: bytes | None) -> None:
    assert mark_of(body) == "sha256:" + hashlib.sha256(body or b"").hexdigest()


# -- what a batch records -----------------------------------------------------------------


def test_a_batch_that_follows_its_anchor_moves_the_position_to_after_its_last_record() -> None:
    anchors = {(TOPIC, 1): Anchor("e1", 10)}
    moved = advances(anchors, "e1", seen(1, 10, 11, 12))
    assert moved == {(TOPIC, 1): Position(13, str(uuid.UUID(int=12)), "e1")}


def test_each_partition_moves_on_its_own() -> None:
    anchors = {(TOPIC, 0): Anchor("e1", 5), (TOPIC, 1): Anchor("e1", 10)}
    records = [*seen(0, 5), *seen(1, 10), *seen(0, 6), *seen(1, 11)]
    assert advances(anchors, "e1", records) == {
        (TOPIC, 0): Position(7, str(uuid.UUID(int=6)), "e1"),
        (TOPIC, 1): Position(12, str(uuid.UUID(int=11)), "e1"),
    }


def test_no_anchor_no_position() -> None:
    # Records read before the consumer positioned the partition (from wherever Kafka
    # started it) are applied, but prove nothing about what came before them.
    assert advances({}, "e1", seen(1, 0, 1)) == {}


def test_a_reset_since_the_anchor_moves_nothing() -> None:
    # The consumer kept reading from its old offsets on a new broker: those offsets
    # may now hold other records, and what is before them may never have been read.
    anchors = {(TOPIC, 1): Anchor("e1", 10)}
    assert advances(anchors, "e2", seen(1, 10, 11)) == {}
    assert advances(anchors, None, seen(1, 10, 11)) == {}  # the broker is being replaced


def test_records_that_do_not_start_at_the_anchor_move_nothing() -> None:
    anchors = {(TOPIC, 1): Anchor("e1", 10)}
    assert advances(anchors, "e1", seen(1, 11, 12)) == {}  # one was skipped
    assert advances(anchors, "e1", seen(1, 3, 4)) == {}  # fetched before a seek


def test_a_gap_stops_the_position_before_it() -> None:
    anchors = {(TOPIC, 1): Anchor("e1", 10)}
    moved = advances(anchors, "e1", seen(1, 10, 11, 13, 14))
    assert moved == {(TOPIC, 1): Position(12, str(uuid.UUID(int=11)), "e1")}


def test_without_an_epoch_file_anchors_work_under_no_epoch() -> None:
    anchors = {(TOPIC, 1): Anchor(None, 0)}
    assert advances(anchors, None, seen(1, 0)) == {(TOPIC, 1): Position(1, str(uuid.UUID(int=0)))}


# -- where to read from after a reset -------------------------------------------------------

TP = (TOPIC, 3)
OLD = Position(100, "mark-99", "e1")  # recorded on the broker before the reset


def test_a_position_from_this_broker_names_a_record_that_is_there() -> None:
    assert expect(TP, Position(100, "m", "e2"), "e2", None) is Expect.THERE


def test_a_position_from_before_the_reset_waits_for_the_owner_to_refill() -> None:
    assert expect(TP, OLD, "e2", None) is Expect.UNKNOWN
    # A refill of an older broker says nothing about this one.
    assert expect(TP, OLD, "e2", Refill("e1", {TP: 500})) is Expect.UNKNOWN


def test_the_refill_says_whether_the_old_offset_exists_on_the_new_broker() -> None:
    assert expect(TP, OLD, "e2", Refill("e2", {TP: 100})) is Expect.THERE  # offset 99 is there
    assert expect(TP, OLD, "e2", Refill("e2", {TP: 99})) is Expect.ABSENT
    assert expect(TP, OLD, "e2", Refill("e2", {(TOPIC, 4): 500})) is Expect.ABSENT
    # How far it wrote is not known (another process began it): nothing is promised.
    assert expect(TP, OLD, "e2", Refill("e2", None)) is Expect.ABSENT


def test_no_stored_point_reads_from_the_beginning() -> None:
    assert decide(None, None, Expect.UNKNOWN) is Start.BEGINNING


def test_the_record_before_the_point_carrying_its_mark_lets_the_consumer_skip_to_it() -> None:
    for expected in Expect:
        assert decide(OLD, (99, "mark-99"), expected) is Start.STORED


@pytest.mark.parametrize(
    "found",
    [
        (99, "another event"),  # the new broker's offsets are not the old ones
        (100, "mark-99"),  # the record is further on: something before it is missing
        (101, "whatever"),
    ],
)
def test_anything_else_there_reads_from_the_beginning(found: tuple[int, str]) -> None:
    assert decide(OLD, found, Expect.THERE) is Start.BEGINNING


def test_a_record_that_is_there_or_may_come_is_waited_for() -> None:
    assert decide(OLD, None, Expect.THERE) is Start.WAIT  # not fetched yet
    assert decide(OLD, None, Expect.UNKNOWN) is Start.WAIT  # not refilled yet


def test_a_record_that_will_not_come_reads_from_the_beginning() -> None:
    # e.g. the old broker held duplicates, or records nobody's outbox has.
    assert decide(OLD, None, Expect.ABSENT) is Start.BEGINNING


def test_waiting_too_long_reads_from_the_beginning() -> None:
    assert decide(OLD, None, Expect.UNKNOWN, timed_out=True) is Start.BEGINNING
    assert decide(OLD, None, Expect.THERE, timed_out=True) is Start.BEGINNING


# -- dead letters as kept ---------------------------------------------------------------


def test_headers_are_kept_as_text_where_they_can_be_and_come_back_byte_for_byte() -> None:
    headers = [
        ("type", b"membership.member_added"),
        ("traceparent", b"00-abc-def-01"),
        ("binary", b"\xff\xfe\x00"),
        ("nul", b"a\x00b"),
        ("type", b"repeated"),
        ("empty", b""),
    ]
    kept = encode_headers(headers)
    assert kept[0] == {"name": "type", "value": "membership.member_added"}
    assert "base64" in kept[2] and "base64" in kept[3]  # JSON in PostgreSQL has no NUL
    assert decode_headers(json.loads(json.dumps(kept))) == headers


def _letter(**changes: object) -> NewDeadLetter:
    fields: dict[str, object] = {
        "topic": TOPIC,
        "partition": 2,
        "offset": 40,
        "key": b"k",
        "headers": [],
        "body": b"garbage",
        "event_id": None,
        "type": None,
        "reason": "not a valid envelope",
    }
    fields.update(changes)
    return NewDeadLetter(**fields)  # type: ignore[arg-type]


def test_an_event_dead_lettered_again_is_the_same_dead_letter_wherever_it_was_read() -> None:
    event_id = uuid.uuid4()
    first = _letter(event_id=event_id, offset=40)
    again = _letter(event_id=event_id, offset=7, partition=2, reason="another reason")
    assert first.fingerprint == again.fingerprint == f"event:{event_id}"


def test_unreadable_records_are_told_apart_by_where_they_were_and_their_bytes() -> None:
    assert _letter().fingerprint == _letter().fingerprint  # redelivered after a crash
    assert _letter().fingerprint != _letter(offset=41).fingerprint
    assert _letter().fingerprint != _letter(body=b"other garbage").fingerprint


# -- what relays and the supervisor leave for consumers ---------------------------------


def test_a_refill_is_read_back_as_written(tmp_path: Path) -> None:
    epoch_file = tmp_path / "broker.epoch"
    assert read_republished(epoch_file, "membership") is None
    refill = Refill("e2", {(TOPIC, 0): 17, ("identity.commands.v1", 5): 3})
    write_republished(epoch_file, "membership", refill)
    assert read_republished(epoch_file, "membership") == refill
    assert read_republished(epoch_file, "identity") is None  # each relay its own file


def test_an_unreadable_refill_promises_nothing(tmp_path: Path) -> None:
    epoch_file = tmp_path / "broker.epoch"
    republished_marker(epoch_file, "membership").write_text("{not json\n")
    assert read_republished(epoch_file, "membership") is None


def test_a_blank_epoch_file_means_the_broker_is_being_replaced(tmp_path: Path) -> None:
    epoch_file = tmp_path / "broker.epoch"
    assert not broker_replacing(None)
    assert not broker_replacing(epoch_file)  # no file: no embedded broker
    write_epoch(epoch_file, "")
    assert broker_replacing(epoch_file) and read_epoch(epoch_file) is None
    write_epoch(epoch_file, "e3")
    assert not broker_replacing(epoch_file) and read_epoch(epoch_file) == "e3"


def test_clients_ask_for_metadata_without_creating_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    # Put back as they were after the test (the patch is for service processes).
    for module in (aiokafka.client, aiokafka.admin.client):
        monkeypatch.setattr(module, "MetadataRequest", module.MetadataRequest)
    refuse_auto_created_topics()
    for module in (aiokafka.client, aiokafka.admin.client):
        request = module.MetadataRequest(["membership.events.v1"])
        built = request.build(MetadataRequest_v5)
        assert built.allow_auto_topic_creation is False, module
