"""OpenTelemetry tracing: set up from the standard ``OTEL_*`` variables, and the trace
context carried across HTTP, the outbox and Kafka.

One "add a user" is one trace. The HTTP request's server span is current while its
unit of work writes the outbox, so each row's ``headers`` column keeps that W3C
context; the relay opens a producer span under it and sends the span's context in
the Kafka record's headers; the consumer opens its span under that, and the events
its handler emits keep the consumer span's context in turn.

Spans are exported (OTLP over HTTP, batched) only when an endpoint is configured
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). Without
one no SDK is installed and every helper here returns at once: no span, no context
stored or sent (the relay still forwards a context a row already has).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodigy_users.contracts.envelope import EnvelopeBase

_tracer = trace.get_tracer("prodigy_users.runtime")
_provider: TracerProvider | None = None

#: Probes and scrapes: frequent, and no one wants them in a trace.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether these ``OTEL_*`` settings ask for spans to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "otlp" not in exporters:
        return False
    endpoints = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    return any(environ.get(name) for name in endpoints)


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the SDK for this process when an OTLP endpoint is configured; True if on.

    The sampler (``OTEL_TRACES_SAMPLER``), batching (``OTEL_BSP_*``) and the exporter's
    endpoint, headers and timeout come from the environment as the SDK reads them.
    ``service.name`` is ``OTEL_SERVICE_NAME`` when set, else the service's own name.
    Idempotent: a process serves one service.
    """
    global _provider
    env = os.environ if environ is None else environ
    if _provider is not None:
        return True
    if not tracing_wanted(env):
        return False
    # Imported here: the exporter pulls in requests and protobuf, which a process
    # that does not trace never needs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    attributes: dict[str, str] = {"service.namespace": "prodigy-users"}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def flush_tracing(timeout_ms: int = 2000) -> None:
    """Export the spans still queued (at shutdown); blocks for at most ``timeout_ms``."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def tracing_active() -> bool:
    """Whether a tracer provider is installed in this process (ours, or a test's)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


# -- propagation ---------------------------------------------------------------


def outbox_headers() -> dict[str, str] | None:
    """The current trace context as the outbox stores it (None when there is none)."""
    if not tracing_active():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def kafka_headers(carrier: Mapping[str, str] | None) -> list[tuple[str, bytes]]:
    """A text carrier as Kafka record headers."""
    return [(k, v.encode()) for k, v in (carrier or {}).items()]


def record_headers(record: Any) -> Sequence[tuple[str, bytes | str | None]]:
    """The headers of a Kafka record (aiokafka's ``ConsumerRecord``); empty if none."""
    headers: Sequence[tuple[str, bytes | str | None]] | None = getattr(record, "headers", None)
    return headers or ()


def context_from_headers(headers: Iterable[tuple[str, bytes | str | None]]) -> Context:
    """The trace context that Kafka record headers carry (an empty one when none)."""
    carrier: dict[str, str] = {}
    for key, value in headers:
        if isinstance(value, bytes):
            carrier[key.lower()] = value.decode("utf-8", "replace")
        elif value is not None:
            carrier[key.lower()] = value
    return propagate.extract(carrier)


# The trace context of each message of a batch handler's run, by event id: a batch
# handler that queues work for later (an email) saves each message's own context.
_RUN_CARRIERS: ContextVar[Mapping[uuid.UUID, dict[str, str]] | None] = ContextVar(
    "run_carriers", default=None
)


@contextlib.contextmanager
def run_carriers(carriers: Mapping[uuid.UUID, dict[str, str]]) -> Iterator[None]:
    """Make each message's context of a run available to ``carrier_for``."""
    token = _RUN_CARRIERS.set(carriers)
    try:
        yield
    finally:
        _RUN_CARRIERS.reset(token)


def carrier_for(event_id: uuid.UUID) -> dict[str, str] | None:
    """The context to save for later work a message causes: its own span's inside a
    batch handler's run, else the current one (None when there is no tracing)."""
    saved = _RUN_CARRIERS.get()
    return (saved.get(event_id) if saved else None) or outbox_headers()


@contextlib.contextmanager
def continue_trace(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span]:
    """A span, current inside the block, under a context saved earlier with
    ``outbox_headers`` (work that runs later, away from the request or message that
    asked for it: e.g. a queued email's delivery). A root span when ``carrier`` is empty."""
    if not tracing_active():
        yield trace.INVALID_SPAN
        return
    with _tracer.start_as_current_span(
        name, context=propagate.extract(carrier or {}), kind=kind, attributes=attributes
    ) as span:
        yield span


# -- consuming -----------------------------------------------------------------


@contextlib.contextmanager
def consume_span(
    topic: str, envelope: EnvelopeBase, record: Any = None, *, consumer: str
) -> Iterator[Span]:
    """A consumer span for one message, current inside the block.

    Its parent is the context in ``record``'s headers (the producer's span), so the
    events a handler emits inside the block carry this span's context. An exception
    leaving the block is recorded on the span; say how it ended with ``record_outcome``.
    """
    if not tracing_active():
        # Extracting, attaching and ending cost ~20 us a message for nothing.
        yield trace.INVALID_SPAN
        return
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.message.id": str(envelope.event_id),
        "messaging.kafka.message.key": envelope.key,
        "prodigy.consumer": consumer,
        "prodigy.event.type": envelope.type,
        "prodigy.event.version": envelope.version,
        "prodigy.event.producer": envelope.producer,
    }
    if envelope.correlation_id:
        attributes["prodigy.correlation_id"] = envelope.correlation_id
    partition, offset = getattr(record, "partition", None), getattr(record, "offset", None)
    if isinstance(partition, int):
        attributes["messaging.destination.partition.id"] = str(partition)
    if isinstance(offset, int):
        attributes["messaging.kafka.offset"] = offset
    with _tracer.start_as_current_span(
        f"process {topic}",
        context=context_from_headers(record_headers(record)),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        yield span


def record_outcome(span: Span, outcome: str, dead: str | None = None) -> None:
    """How a message ended (applied, duplicate, skipped); ``dead``: why it is dead-lettered."""
    if dead is not None:
        span.set_attribute("prodigy.outcome", "dead_lettered")
        span.set_attribute("prodigy.dlq.reason", dead[:2000])
        span.set_status(Status(StatusCode.ERROR, dead[:200]))
    else:
        span.set_attribute("prodigy.outcome", outcome)


def record_dead_letter(topic: str, record: Any, reason: str, *, consumer: str) -> dict[str, str]:
    """A span for a message sent to ``<topic>.dlq``; the headers that lead to it.

    Its parent is the context the message came with, so a message nobody could
    even read (no envelope, hence no consumer span) still shows up in its trace.
    """
    if not tracing_active():
        return {}
    span = _tracer.start_span(
        f"dead-letter {topic}",
        context=context_from_headers(record_headers(record)),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": f"{topic}.dlq",
            "prodigy.consumer": consumer,
            "prodigy.outcome": "dead_lettered",
            "prodigy.dlq.reason": reason[:2000],
        },
    )
    span.set_status(Status(StatusCode.ERROR, reason[:200]))
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    span.end()
    return carrier


# -- publishing ----------------------------------------------------------------


class PublishSpans:
    """Producer spans for one relay batch: one per outbox row that has a trace context.

    ``with PublishSpans() as spans:`` then ``spans.headers(...)`` for each row as it
    is sent and ``spans.settle(results)`` once the sends are acknowledged; spans still
    open when the block ends (a send that raised) end with the error.
    """

    def __init__(self) -> None:
        self._spans: list[Span | None] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for span in self._spans:
            if span is not None and span.is_recording():
                if exc is not None:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, repr(exc)[:200]))
                span.end()
        self._spans.clear()

    def headers(
        self,
        topic: str,
        envelope: Mapping[str, Any],
        stored: Mapping[str, str] | None,
        *,
        waited_s: float | None = None,
    ) -> list[tuple[str, bytes]]:
        """Open the row's span; the Kafka headers that carry it (none for an untraced row)."""
        if not stored or not tracing_active():
            self._spans.append(None)
            return kafka_headers(stored)
        parent = propagate.extract(stored)
        attributes: dict[str, str | float] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": str(envelope.get("event_id")),
            "messaging.kafka.message.key": str(envelope.get("key")),
            "prodigy.event.type": str(envelope.get("type")),
        }
        if waited_s is not None:
            # How long the event sat in the outbox: relay lag, as this trace saw it.
            attributes["prodigy.outbox.wait_s"] = waited_s
        span = _tracer.start_span(
            f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
        )
        self._spans.append(span)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
        return kafka_headers(carrier)

    def again(self, stored: Mapping[str, str] | None) -> list[tuple[str, bytes]]:
        """A row sent again (a reset broker being refilled): the Kafka headers of its
        stored context as they are, and no new span (its first send had one)."""
        self._spans.append(None)
        return kafka_headers(stored)

    def settle(self, results: Sequence[object]) -> None:
        """End each span with its send's result (an exception marks it failed)."""
        for span, result in zip(self._spans, results, strict=False):
            if span is None:
                continue
            if isinstance(result, BaseException):
                span.record_exception(result)
                span.set_status(Status(StatusCode.ERROR, repr(result)[:200]))
            elif result is not None:
                offset = getattr(result, "offset", None)
                partition = getattr(result, "partition", None)
                if isinstance(partition, int):
                    span.set_attribute("messaging.destination.partition.id", str(partition))
                if isinstance(offset, int):
                    span.set_attribute("messaging.kafka.offset", offset)
            span.end()
        self._spans.clear()


# -- HTTP ----------------------------------------------------------------------


class TracingMiddleware:
    """A server span per HTTP request (plain ASGI: the context reaches the endpoint).

    An incoming ``traceparent`` becomes the parent. Only the route template is
    recorded, never the path or the query: some carry tokens.
    """

    def __init__(self, app: ASGIApp, untraced: frozenset[str] = UNTRACED_PATHS) -> None:
        self.app = app
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under its span."""
        if scope["type"] != "http" or scope["path"] in self.untraced or not tracing_active():
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start" and span.is_recording():
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    for key, value in message.get("headers", ()):
                        if key.lower() == b"x-correlation-id":
                            span.set_attribute("prodigy.correlation_id", value.decode("latin-1"))
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                template = getattr(scope.get("route"), "path", None)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
