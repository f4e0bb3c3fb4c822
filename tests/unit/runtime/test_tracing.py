"""Trace context across HTTP, the outbox and Kafka headers (runtime/tracing.py), with
the SDK's in-memory exporter."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, Response
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.runtime.service import ServiceSpec, build_app
from prodigy_users.runtime.settings import ServiceSettings
from prodigy_users.runtime.tracing import (
    PublishSpans,
    configure_tracing,
    consume_span,
    context_from_headers,
    continue_trace,
    kafka_headers,
    outbox_headers,
    record_dead_letter,
    record_outcome,
    tracing_wanted,
)
from tests.otel import memory_exporter

TOPIC = "membership.events.v1"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = memory_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


def tracer() -> trace.Tracer:
    return trace.get_tracer("tests")


def envelope(**overrides: Any) -> RawEnvelope:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "type": "membership.member_added",
        "version": 1,
        "producer": "membership",
        "key": str(uuid.uuid4()),
        "correlation_id": "corr-1",
        "data": {},
        **overrides,
    }
    return RawEnvelope.model_validate(fields)


def record(headers: list[tuple[str, bytes]], *, partition: int = 3, offset: int = 42) -> Any:
    """A record as aiokafka hands it to the consumer."""
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=headers,
    )


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def points_at(traceparent: str | bytes | None, trace_id: int, span_id: int) -> bool:
    """Whether a W3C traceparent names this span (whatever its flags say)."""
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode()
    version, trace_hex, span_hex, flags = str(traceparent).split("-")
    return (version, trace_hex, span_hex) == ("00", f"{trace_id:032x}", f"{span_id:016x}") and (
        int(flags, 16) & 1 == 1  # sampled
    )


# -- configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "otlp"}, True),
    ],
)
def test_spans_are_exported_only_when_an_endpoint_is_configured(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_wanted(environ) is wanted


def test_without_an_endpoint_nothing_is_installed() -> None:
    assert configure_tracing("identity", environ={}) is False


_WITHOUT_SDK = """
import uuid
from opentelemetry import trace
from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.runtime import tracing

assert not tracing.configure_tracing("identity")
envelope = RawEnvelope.model_validate({"event_id": str(uuid.uuid4()), "type": "t",
    "version": 1, "producer": "p", "key": "k", "data": {}})
class Record:
    headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
with tracing.consume_span("topic", envelope, Record, consumer="c") as span:
    assert span is trace.INVALID_SPAN
    assert tracing.outbox_headers() is None
with tracing.PublishSpans() as spans:
    assert spans.headers("topic", {}, {"traceparent": "00-ab-cd-01"}) == [
        ("traceparent", b"00-ab-cd-01")
    ]
assert tracing.record_dead_letter("topic", Record, "why", consumer="c") == {}
print("ok")
"""


def test_without_an_endpoint_the_helpers_do_nothing_but_forward_what_rows_have() -> None:
    # A process of its own: this one has a tracer provider (the tests'), for good.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SDK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- propagation ---------------------------------------------------------------


def test_no_current_span_means_no_outbox_headers() -> None:
    assert outbox_headers() is None


def test_outbox_headers_carry_the_current_span_and_survive_kafka(
    spans: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("request") as span:
        stored = outbox_headers()
    assert stored is not None
    context = span.get_span_context()
    assert points_at(stored["traceparent"], context.trace_id, context.span_id)

    headers = kafka_headers(stored)
    assert ("traceparent", stored["traceparent"].encode()) in headers
    extracted = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert extracted.is_remote
    assert (extracted.trace_id, extracted.span_id) == (context.trace_id, context.span_id)


def test_saved_context_continues_in_later_work(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("consume") as consuming:
        saved = outbox_headers()
    with continue_trace("deliver email", saved, attributes={"prodigy.template": "welcome"}):
        emitted = outbox_headers()
    [delivered] = [s for s in spans.get_finished_spans() if s.name == "deliver email"]
    trace_id, span_id = ids(delivered)
    assert trace_id == consuming.get_span_context().trace_id
    assert parent_id(delivered) == consuming.get_span_context().span_id
    assert delivered.attributes is not None
    assert delivered.attributes["prodigy.template"] == "welcome"
    assert emitted is not None and points_at(emitted["traceparent"], trace_id, span_id)
    with continue_trace("no context", None):
        pass
    assert by_name(spans, "no context").parent is None


def test_headers_without_a_context_extract_to_none() -> None:
    context = context_from_headers([("type", b"x"), ("event_id", b"1")])
    assert not trace.get_current_span(context).get_span_context().is_valid


# -- consuming -----------------------------------------------------------------


def test_the_consumer_span_is_a_child_of_the_producer_and_parents_what_it_emits(
    spans: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("send") as producer:
        headers = kafka_headers(outbox_headers())
    event = envelope()

    with consume_span(TOPIC, event, record(headers), consumer="reporting") as span:
        emitted = outbox_headers()
        record_outcome(span, "applied")
    assert trace.get_current_span() is trace.INVALID_SPAN, "the span is current only inside"

    consumed = by_name(spans, f"process {TOPIC}")
    trace_id, span_id = ids(consumed)
    assert trace_id == producer.get_span_context().trace_id
    assert parent_id(consumed) == producer.get_span_context().span_id
    assert consumed.kind is SpanKind.CONSUMER
    assert consumed.attributes is not None
    assert dict(consumed.attributes) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": TOPIC,
        "messaging.message.id": str(event.event_id),
        "messaging.kafka.message.key": event.key,
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 42,
        "prodigy.consumer": "reporting",
        "prodigy.event.type": "membership.member_added",
        "prodigy.event.version": 1,
        "prodigy.event.producer": "membership",
        "prodigy.correlation_id": "corr-1",
        "prodigy.outcome": "applied",
    }
    # What the handler emits continues the trace under the consumer span.
    assert emitted is not None
    assert points_at(emitted["traceparent"], trace_id, span_id)


def test_a_message_without_context_starts_a_trace_of_its_own(
    spans: InMemorySpanExporter,
) -> None:
    with consume_span(TOPIC, envelope(correlation_id=None), None, consumer="x") as span:
        record_outcome(span, "duplicate")
    consumed = by_name(spans, f"process {TOPIC}")
    assert consumed.parent is None
    assert consumed.attributes is not None
    assert consumed.attributes["prodigy.outcome"] == "duplicate"
    assert "prodigy.correlation_id" not in consumed.attributes


def test_a_dead_lettered_message_records_the_error(spans: InMemorySpanExporter) -> None:
    with consume_span(TOPIC, envelope(), None, consumer="x") as span:
        record_outcome(span, "skipped", "handler failed: ValueError('bad')")
    consumed = by_name(spans, f"process {TOPIC}")
    assert consumed.status.status_code is StatusCode.ERROR
    assert consumed.attributes is not None
    assert consumed.attributes["prodigy.outcome"] == "dead_lettered"
    assert consumed.attributes["prodigy.dlq.reason"] == "handler failed: ValueError('bad')"


def test_an_exception_in_the_handler_is_recorded_and_raised(
    spans: InMemorySpanExporter,
) -> None:
    with (
        pytest.raises(ConnectionError),
        consume_span(TOPIC, envelope(), None, consumer="x"),
    ):
        raise ConnectionError("database away")
    consumed = by_name(spans, f"process {TOPIC}")
    assert consumed.status.status_code is StatusCode.ERROR
    assert [e.name for e in consumed.events] == ["exception"]


def test_a_dead_letter_span_hangs_under_the_message_and_leads_the_dlq_record_to_it(
    spans: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("send") as producer:
        headers = kafka_headers(outbox_headers())
    dlq_headers = record_dead_letter(TOPIC, record(headers), "not a valid envelope", consumer="x")

    dead = by_name(spans, f"dead-letter {TOPIC}")
    trace_id, span_id = ids(dead)
    assert parent_id(dead) == producer.get_span_context().span_id
    assert dead.status.status_code is StatusCode.ERROR
    assert dead.attributes is not None
    assert dead.attributes["messaging.destination.name"] == f"{TOPIC}.dlq"
    assert dead.attributes["prodigy.dlq.reason"] == "not a valid envelope"
    assert points_at(dlq_headers["traceparent"], trace_id, span_id)


# -- publishing ----------------------------------------------------------------


def test_the_relay_sends_a_producer_span_under_the_stored_context(
    spans: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("request") as request:
        stored = outbox_headers()
    event = {"event_id": "e-1", "key": "dept-1", "type": "membership.member_added"}
    sent = type("Metadata", (), {"partition": 2, "offset": 7})()

    with PublishSpans() as publishing:
        traced = publishing.headers(TOPIC, event, stored, waited_s=0.25)
        untraced = publishing.headers(TOPIC, event, None)
        publishing.settle([sent, sent])

    assert untraced == []
    send = by_name(spans, f"send {TOPIC}")
    trace_id, span_id = ids(send)
    assert trace_id == request.get_span_context().trace_id
    assert parent_id(send) == request.get_span_context().span_id
    assert send.kind is SpanKind.PRODUCER
    assert points_at(dict(traced)["traceparent"], trace_id, span_id)
    assert send.attributes is not None
    assert send.attributes["prodigy.outbox.wait_s"] == 0.25
    assert send.attributes["messaging.message.id"] == "e-1"
    assert send.attributes["messaging.destination.partition.id"] == "2"
    assert send.attributes["messaging.kafka.offset"] == 7
    assert send.status.status_code is StatusCode.UNSET


def test_a_failed_send_marks_its_span_and_a_raise_ends_the_rest(
    spans: InMemorySpanExporter,
) -> None:
    with tracer().start_as_current_span("request"):
        stored = outbox_headers()
    event = {"event_id": "e-1", "key": "k", "type": "t"}
    with PublishSpans() as publishing:
        publishing.headers("a", event, stored)
        publishing.settle([TimeoutError("no ack")])
    with pytest.raises(OSError), PublishSpans() as publishing:
        publishing.headers("b", event, stored)
        raise OSError("broker away")

    for name in ("send a", "send b"):
        span = by_name(spans, name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert span.end_time is not None


# -- HTTP ----------------------------------------------------------------------


def app() -> FastAPI:
    """A service app as build_app wires it (no lifespan: these routes need no runtime)."""
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str | None]:
        return {"item_id": item_id, "emitted": (outbox_headers() or {}).get("traceparent")}

    @router.get("/boom")
    async def boom() -> Response:
        return Response(status_code=503)

    spec = ServiceSpec(
        name="test", settings=ServiceSettings(), title="t", description="d", routers=[router]
    )
    return build_app(spec)


async def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_a_request_is_a_server_span_named_by_its_route(
    spans: InMemorySpanExporter,
) -> None:
    r = await get("/items/secret-token-123?token=abc", {"x-correlation-id": "corr-7"})
    assert r.status_code == 200

    # One span: FastAPI's own (which would record the path and query) is off.
    [span] = spans.get_finished_spans()
    trace_id, span_id = ids(span)
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["prodigy.correlation_id"] == "corr-7"
    # Paths and queries can carry tokens: they stay out of the trace.
    assert not any("secret" in str(v) or "abc" in str(v) for v in span.attributes.values())
    # The endpoint runs inside the span: what it would emit joins the trace.
    assert points_at(r.json()["emitted"], trace_id, span_id)


async def test_an_incoming_traceparent_is_the_parent(spans: InMemorySpanExporter) -> None:
    trace_id, caller = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    r = await get("/items/1", {"traceparent": f"00-{trace_id}-{caller}-01"})
    assert r.status_code == 200
    [span] = spans.get_finished_spans()
    assert f"{ids(span)[0]:032x}" == trace_id
    assert f"{parent_id(span):016x}" == caller


async def test_server_errors_mark_the_span_and_probes_are_not_traced(
    spans: InMemorySpanExporter,
) -> None:
    assert (await get("/boom")).status_code == 503
    assert (await get("/healthz")).status_code == 200
    [span] = spans.get_finished_spans()
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
