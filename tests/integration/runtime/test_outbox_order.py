"""A consumed batch writes the events its handlers emit to the outbox in one go, and in
the order they were emitted, also when a batch handler's run (which writes its own)
comes between two messages: the relay publishes by outbox order, and subscribers
rely on per-key order.

On a real PostgreSQL (a service's migrated database); no broker is reached.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope, wrap
from prodigy_users.contracts.membership import DepartmentCreated, GroupCreated, GroupDeleted
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.messaging_tables import outbox
from prodigy_users.runtime.settings import ServiceSettings
from prodigy_users.runtime.uow import UnitOfWork, write_outbox
from tests.integration.consumers import consumer_record
from tests.integration.databases import own_database

pytestmark = pytest.mark.timeout(120)

DEPARTMENT = uuid.uuid4()


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with own_database("membership") as eng:
        yield eng


async def each(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    """Per message: two events, in this order."""
    group = GroupCreated(department_id=DEPARTMENT, group_id=uuid.uuid4(), name="a")
    uow.emit(group, key=DEPARTMENT)
    uow.emit(GroupDeleted(department_id=DEPARTMENT, group_id=uuid.uuid4()), key=DEPARTMENT)


async def run(conn: AsyncConnection, messages: Sequence[tuple[RawEnvelope, Any]]) -> None:
    """A batch handler's run: one event per message, written by the handler itself."""
    rows = []
    for _, payload in messages:
        unit = UnitOfWork.joined(conn, "test")
        unit.emit(DepartmentCreated(department_id=DEPARTMENT, name=payload.name), key=DEPARTMENT)
        rows.extend(unit.outbox_rows())
    await write_outbox(conn, rows)


def message(offset: int, payload: Any) -> tuple[Any, ConsumerRecord[bytes, bytes]]:
    body = wrap(payload, producer="membership", key=str(DEPARTMENT)).encode()
    return MEMBERSHIP_EVENTS, consumer_record(MEMBERSHIP_EVENTS.name, offset, body)


async def test_events_are_written_in_the_order_they_were_emitted(engine: AsyncEngine) -> None:
    consumer = Consumer(
        f"order-{uuid.uuid4().hex[:6]}",
        engine,
        KafkaBroker("127.0.0.1:1"),
        ServiceSettings(),
        {GroupCreated: each, DepartmentCreated: each},
        batch_handler=run,
        batch_types=frozenset({DepartmentCreated}),
    )
    group = GroupCreated(department_id=DEPARTMENT, group_id=uuid.uuid4(), name="x")
    batch = [
        message(0, group),
        message(1, DepartmentCreated(department_id=DEPARTMENT, name="run 1")),
        message(2, DepartmentCreated(department_id=DEPARTMENT, name="run 2")),
        message(3, group.model_copy(update={"group_id": uuid.uuid4()})),
        message(4, group.model_copy(update={"group_id": uuid.uuid4()})),
        message(5, DepartmentCreated(department_id=DEPARTMENT, name="run 3")),
    ]
    await consumer.process_batch(batch, consumer.by_type())

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.type, outbox.c.envelope)
                .where(outbox.c.key == str(DEPARTMENT))
                .order_by(outbox.c.id)
            )
        ).all()
    created, deleted, department = (
        GroupCreated.TYPE,
        GroupDeleted.TYPE,
        DepartmentCreated.TYPE,
    )
    assert [r.type for r in rows] == [
        created, deleted,  # message 0
        department, department,  # the run of messages 1 and 2
        created, deleted, created, deleted,  # messages 3 and 4
        department,  # message 5
    ]  # fmt: skip
    assert [r.envelope["data"]["name"] for r in rows if r.type == department] == [
        "run 1",
        "run 2",
        "run 3",
    ]
