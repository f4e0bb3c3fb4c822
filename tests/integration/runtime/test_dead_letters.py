"""The consumer keeps its dead letters in its database, in the batch's transaction, once
per message; a replay goes through the same handlers and inbox and records its outcome.

On a real PostgreSQL (a service's migrated database); FastStream's test broker stands
in for Kafka, which only receives the copies on ``<topic>.dlq``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope, wrap
from prodigy_users.contracts.membership import DepartmentCreated
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.runtime import dead_letter_store
from prodigy_users.runtime.consumer import Consumer, DeadLetter
from prodigy_users.runtime.settings import ServiceSettings
from prodigy_users.runtime.uow import UnitOfWork
from tests.integration.consumers import consumer_record
from tests.integration.databases import own_database

pytestmark = pytest.mark.timeout(120)

# Departments the handler refuses until the test says otherwise (the "cause").
REFUSED: set[uuid.UUID] = set()


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    # Reporting's migrations: the runtime's tables come with every service's.
    async with own_database("reporting") as eng:
        async with eng.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE effects (department_id uuid NOT NULL)"))
        yield eng


async def record_department(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    if payload.department_id in REFUSED:
        raise DeadLetter(f"department {payload.department_id} is refused for now")
    await uow.conn.execute(sa.text("INSERT INTO effects VALUES (:d)"), {"d": payload.department_id})


@pytest.fixture
async def consumer(engine: AsyncEngine) -> AsyncIterator[Consumer]:
    broker = KafkaBroker("127.0.0.1:1")
    async with TestKafkaBroker(broker):
        yield Consumer(
            f"dlq-{uuid.uuid4().hex[:6]}",
            engine,
            broker,
            ServiceSettings(handler_max_attempts=2),
            {DepartmentCreated: record_department},
        )


def record(offset: int, body: bytes, key: bytes = b"k") -> ConsumerRecord[bytes, bytes]:
    headers = [("traceparent", b"00-abc-01"), ("binary", b"\xff\x00")]
    return consumer_record(
        MEMBERSHIP_EVENTS.name, offset, body, partition=2, key=key, headers=headers
    )


def department_event(department_id: uuid.UUID) -> bytes:
    payload = DepartmentCreated(department_id=department_id, name="Dead Letter EMS")
    return wrap(payload, producer="membership", key=str(department_id)).encode()


async def apply(consumer: Consumer, *records: ConsumerRecord[bytes, bytes]) -> None:
    await consumer.process_batch([(MEMBERSHIP_EVENTS, r) for r in records], consumer.by_type())


async def effects(engine: AsyncEngine, department_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.text("SELECT count(*) FROM effects WHERE department_id = :d"), {"d": department_id}
        )
    return int(count or 0)


async def test_dead_letters_are_kept_once_with_the_message_as_it_came(
    engine: AsyncEngine, consumer: Consumer
) -> None:
    good, refused = uuid.uuid4(), uuid.uuid4()
    REFUSED.add(refused)
    garbage = b"not an envelope " + uuid.uuid4().hex.encode()
    batch = [
        record(40, garbage, key=b"garbage-key"),
        record(41, department_event(refused)),
        record(42, department_event(good)),
    ]

    await apply(consumer, *batch)
    # Delivered again (a crash before the offsets were committed): nothing kept twice.
    await apply(consumer, *batch)

    assert await effects(engine, good) == 1
    letters = await dead_letter_store.listing(engine, consumer.service)
    assert [(d.offset, d.partition, d.topic) for d in letters] == [
        (40, 2, MEMBERSHIP_EVENTS.name),
        (41, 2, MEMBERSHIP_EVENTS.name),
    ]
    unreadable, refusal = letters
    assert unreadable.body == garbage and unreadable.key == b"garbage-key"
    assert unreadable.event_id is None and unreadable.type is None
    assert unreadable.reason.startswith("not a valid envelope")
    assert unreadable.headers == [("traceparent", b"00-abc-01"), ("binary", b"\xff\x00")]
    assert refusal.body == batch[1].value
    assert refusal.event_id == RawEnvelope.model_validate_json(batch[1].value).event_id
    assert refusal.type == DepartmentCreated.TYPE
    assert refusal.reason == f"department {refused} is refused for now"
    assert (refusal.replays, refusal.replay_outcome) == (0, None)
    assert await dead_letter_store.unsettled(engine, consumer.service) == 2


async def test_a_replay_applies_a_fixed_message_once_and_records_each_outcome(
    engine: AsyncEngine, consumer: Consumer
) -> None:
    refused = uuid.uuid4()
    REFUSED.add(refused)
    garbage = b"still not an envelope"
    await apply(consumer, record(50, department_event(refused)), record(51, garbage))
    event, unreadable = await dead_letter_store.listing(engine, consumer.service)

    # Before the cause is fixed: it fails again, and the row says so.
    [again] = await consumer.apply_stored([event])
    assert (again.outcome, again.reason) == (
        "dead_lettered",
        f"department {refused} is refused for now",
    )
    REFUSED.discard(refused)
    done = await consumer.apply_stored([event, unreadable])
    assert [(r.id, r.outcome) for r in done] == [
        (event.id, "applied"),
        (unreadable.id, "dead_lettered"),
    ]
    assert done[1].reason is not None and done[1].reason.startswith("not a valid envelope")
    [twice] = await consumer.apply_stored([event])
    assert (twice.outcome, twice.reason) == ("duplicate", None)

    assert await effects(engine, refused) == 1
    kept = await dead_letter_store.fetch(engine, consumer.service, [event.id, unreadable.id])
    assert (kept[event.id].replays, kept[event.id].replay_outcome) == (3, "duplicate")
    assert kept[event.id].replayed_at is not None and kept[event.id].settled
    assert (kept[unreadable.id].replays, kept[unreadable.id].replay_outcome) == (1, "dead_lettered")
    # Only the unreadable one still waits; no replay kept a second row.
    assert await dead_letter_store.unsettled(engine, consumer.service) == 1
    assert len(await dead_letter_store.listing(engine, consumer.service)) == 2
