"""The consumer on a real PostgreSQL: each message's span hangs under the producer's
span from the record headers, and the events its handler emits keep that span's
context in the outbox (spans in memory; the broker is never used)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import Payload, RawEnvelope, wrap
from prodigy_users.contracts.membership import DepartmentCreated, GroupCreated
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.runtime.consumer import Consumer, DeadLetter, Handler
from prodigy_users.runtime.messaging_tables import inbox, metadata, outbox
from prodigy_users.runtime.settings import ServiceSettings
from prodigy_users.runtime.tracing import kafka_headers, outbox_headers
from prodigy_users.runtime.uow import UnitOfWork
from tests.integration.consumers import consumer_record
from tests.integration.databases import own_database
from tests.otel import memory_exporter

pytestmark = pytest.mark.timeout(120)

PROCESS = f"process {MEMBERSHIP_EVENTS.name}"


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A database with the messaging tables, on a PostgreSQL of its own."""
    async with own_database("tracing", migrate=False) as eng:
        async with eng.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield eng


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = memory_exporter()
    exporter.clear()
    return exporter


def consumer(engine: AsyncEngine, handlers: dict[type[Payload], Handler], **kw: Any) -> Consumer:
    return Consumer(
        "tracing-test",
        engine,
        KafkaBroker("127.0.0.1:1"),
        ServiceSettings(handler_max_attempts=2),
        handlers,
        dead_letter=False,  # nothing here may reach a broker
        **kw,
    )


def sent(offset: int) -> tuple[ReadableSpan, ConsumerRecord[bytes, bytes]]:
    """A producer span and the record it sent: a DepartmentCreated with its context."""
    with trace.get_tracer("tests").start_as_current_span("send") as span:
        headers = kafka_headers(outbox_headers())
    body = wrap(
        DepartmentCreated(department_id=uuid.uuid4(), name="Traced EMS"),
        producer="membership",
        key=str(uuid.uuid4()),
    ).encode()
    record = consumer_record(MEMBERSHIP_EVENTS.name, offset, body, partition=1, headers=headers)
    assert isinstance(span, ReadableSpan)
    return span, record


async def emit_group(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    """A handler that emits an event, as every service's handlers may."""
    uow.emit(
        GroupCreated(department_id=payload.department_id, group_id=uuid.uuid4(), name="Medics"),
        key=payload.department_id,
    )


async def process(c: Consumer, *records: ConsumerRecord[bytes, bytes]) -> None:
    by_type = {p.TYPE: (p, h) for p, h in c.handlers.items()}
    await c.process_batch([(MEMBERSHIP_EVENTS, r) for r in records], by_type)


async def emitted_traceparent(engine: AsyncEngine, department_id: str) -> str:
    async with engine.connect() as conn:
        headers = (
            await conn.execute(
                sa.select(outbox.c.headers).where(
                    outbox.c.envelope["data"]["department_id"].astext == department_id
                )
            )
        ).scalar_one()
    return str(headers["traceparent"])


def traceparent_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}-{span.context.span_id:016x}"


def department_of(record: ConsumerRecord[bytes, bytes]) -> str:
    return str(RawEnvelope.model_validate_json(record.value).data["department_id"])


def of_message(spans: InMemorySpanExporter, record: ConsumerRecord[bytes, bytes]) -> list[Any]:
    event_id = str(RawEnvelope.model_validate_json(record.value).event_id)
    return [
        s
        for s in spans.get_finished_spans()
        if s.name == PROCESS and (s.attributes or {}).get("messaging.message.id") == event_id
    ]


async def test_the_handler_runs_under_the_producers_trace_and_emits_into_it(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    producer, record = sent(offset=10)

    await process(consumer(engine, {DepartmentCreated: emit_group}), record)

    [span] = of_message(spans, record)
    assert span.parent is not None and producer.context is not None
    assert span.context is not None
    assert span.context.trace_id == producer.context.trace_id
    assert span.parent.span_id == producer.context.span_id
    assert span.attributes is not None
    assert span.attributes["prodigy.outcome"] == "applied"
    assert span.attributes["messaging.kafka.offset"] == 10
    # The event the handler emitted carries the consumer span's context.
    assert traceparent_of(span) in await emitted_traceparent(engine, department_of(record))


async def test_a_retried_message_gets_a_span_per_attempt_and_emits_under_the_last(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    failures: list[str] = []

    async def flaky(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
        if str(payload.department_id) == bad and not failures:
            failures.append("once")
            raise ValueError("first time unlucky")
        await emit_group(uow, envelope, payload)

    _, good_record = sent(offset=20)
    _, bad_record = sent(offset=21)
    bad = department_of(bad_record)

    await process(consumer(engine, {DepartmentCreated: flaky}), good_record, bad_record)

    # The batch failed on the second message and was applied again one by one.
    failed, retried = of_message(spans, bad_record)
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    assert retried.attributes is not None
    assert retried.attributes["prodigy.outcome"] == "applied"
    assert traceparent_of(retried) in await emitted_traceparent(engine, bad)
    _, committed = of_message(spans, good_record)
    assert traceparent_of(committed) in await emitted_traceparent(
        engine, department_of(good_record)
    )


async def test_a_dead_lettered_message_records_the_reason(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    async def refuse(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
        raise DeadLetter("no such department")

    producer, record = sent(offset=30)
    await process(consumer(engine, {DepartmentCreated: refuse}), record)

    span = of_message(spans, record)[-1]
    assert span.parent is not None and producer.context is not None
    assert span.parent.span_id == producer.context.span_id
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["prodigy.outcome"] == "dead_lettered"
    assert span.attributes["prodigy.dlq.reason"] == "no such department"


async def test_a_batch_handler_run_gets_one_span_per_message(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    seen: list[str] = []

    async def fold(conn: AsyncConnection, run: Sequence[tuple[RawEnvelope, Any]]) -> None:
        seen.extend(str(envelope.event_id) for envelope, _ in run)

    first_producer, first = sent(offset=40)
    second_producer, second = sent(offset=41)
    c = consumer(
        engine,
        {DepartmentCreated: emit_group},
        batch_handler=fold,
        batch_types=frozenset({DepartmentCreated}),
    )
    await process(c, first, second)

    assert len(seen) == 2
    for producer, record in ((first_producer, first), (second_producer, second)):
        [span] = of_message(spans, record)
        assert span.parent is not None and producer.context is not None
        assert span.parent.span_id == producer.context.span_id
        assert span.attributes is not None
        assert span.attributes["prodigy.outcome"] == "applied"


async def test_an_ignored_message_is_skipped_without_an_inbox_row(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    """``ignored``: messages the service knows it has nothing to do with."""
    handled: list[str] = []

    async def remember(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
        handled.append(str(payload.department_id))

    _, skipped = sent(40)
    _, kept = sent(41)
    c = consumer(
        engine,
        {DepartmentCreated: remember},
        ignored={DepartmentCreated: lambda p: str(p.department_id) == department_of(skipped)},
    )
    await process(c, skipped, kept)
    assert handled == [department_of(kept)]
    ids = [RawEnvelope.model_validate_json(r.value).event_id for r in (skipped, kept)]
    async with engine.connect() as conn:
        claimed = set(
            (
                await conn.execute(
                    sa.select(inbox.c.event_id).where(
                        inbox.c.consumer == "tracing-test", inbox.c.event_id.in_(ids)
                    )
                )
            ).scalars()
        )
    assert claimed == {ids[1]}
