"""One wiring root per service process: HTTP app, broker, consumers, outbox relay.

``build_app(spec)`` returns a FastAPI app whose lifespan starts everything the
service needs and stops it again; nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodigy_users.contracts.envelope import Payload

from . import dead_letter_store, idempotency, problems, throttle
from . import openapi as openapi_doc
from .auth import TokenVerifier
from .body_limit import BodyLimit, Override
from .consumer import BatchHandler, Consumer, Handler
from .db import ensure_database, make_engine, migrate
from .errors import ProblemTable
from .headers import SecurityHeaders
from .idempotency_store import KeyStore
from .kafka_admin import ensure_topics, refuse_auto_created_topics
from .kafka_security import broker_security, client_options
from .logging import configure_logging, correlation_id, get_logger
from .metrics import Metrics
from .relay import OutboxRelay, backlog, read_epoch
from .revocation_store import CutOffs
from .serving import KEEP_ALIVE_S
from .settings import ServiceSettings
from .text_guard import TextGuard
from .throttle import Throttle
from .tracing import TracingMiddleware, configure_tracing, flush_tracing

log = get_logger(__name__)

Background = Callable[["Runtime"], Awaitable[None]]
C = TypeVar("C")
T = TypeVar("T")


@dataclass
class ServiceSpec:
    """What makes one service: its name, settings, HTTP routes, handlers and workers."""

    name: str
    settings: ServiceSettings
    title: str
    description: str
    routers: Sequence[APIRouter] = ()
    # The service's domain errors and the problem each is answered with.
    problems: ProblemTable = field(default_factory=dict)
    handlers: Mapping[type[Payload], Handler] = field(default_factory=dict)
    # Optional fast path for runs of these payload types (see ``Consumer``).
    batch_handler: BatchHandler | None = None
    batch_types: frozenset[type[Payload]] = frozenset()
    # Messages of these types the predicate picks are skipped (see ``Consumer``).
    ignored: Mapping[type[Payload], Callable[[Any], bool]] = field(default_factory=dict)
    background: Sequence[Background] = ()
    # Builds the service's container of use cases once the runtime (its engine) exists;
    # routes get it typed through ``use_cases``, workers through ``Runtime.use_cases``.
    container: Callable[[Runtime], object] | None = None
    # POST operations (OpenAPI operation ids) that honour ``Idempotency-Key``; their
    # database needs the ``idempotency_keys`` table (``runtime.idempotency_store``).
    idempotent: frozenset[str] = frozenset()
    # Routes guarded by ``runtime.throttle``: their database needs the ``throttle_counts``
    # table (``runtime.throttle_store``).
    throttled: bool = False
    # Paths (regular expressions) whose bodies may be larger than ``max_body_bytes``.
    body_limits: Sequence[Override] = ()
    # Run once the runtime exists, before consumers start.
    startup: Sequence[Background] = ()
    migrate_on_start: bool = True


@dataclass
class Runtime:
    """The live parts of a running service, on ``app.state.runtime``."""

    spec: ServiceSpec
    engine: AsyncEngine
    broker: KafkaBroker
    consumer: Consumer
    relay: OutboxRelay
    metrics: Metrics
    # Connected: the broker answers (topics made, the producer side up). Started: every
    # consumer has joined its group too, which after a crash waits for the group to
    # give up on the dead member (its session timeout), so readiness does not wait for it.
    broker_connected: asyncio.Event = field(default_factory=asyncio.Event)
    broker_started: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # The service's use cases: one object (a dataclass) built by ``ServiceSpec.container``
    # once the engine exists; routes get it typed through ``use_cases``.
    container: object = None

    @property
    def settings(self) -> ServiceSettings:
        """The service's settings."""
        return self.spec.settings

    def use_cases(self, kind: type[C]) -> C:
        """The container of use cases the service wired, as the type it wired."""
        if not isinstance(self.container, kind):
            raise RuntimeError(f"{kind.__name__} is not wired: ServiceSpec.container builds it")
        return self.container

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run a background coroutine for the life of the service."""
        self.tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]


def use_cases(kind: type[C]) -> Callable[[Request], Awaitable[C]]:
    """A FastAPI dependency on the running service's container of use cases, typed:
    ``Annotated[Reporting, Depends(use_cases(Reporting))]``."""

    # async: FastAPI runs a plain function dependency in a worker thread, a hop per request.
    async def dependency(request: Request) -> C:
        runtime: Runtime = request.app.state.runtime
        return runtime.use_cases(kind)

    return dependency


def use_case(kind: type[C], pick: Callable[[C], T]) -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency on one part of the running service's container, typed:
    ``Annotated[Groups, Depends(use_case(UseCases, lambda c: c.groups))]``."""
    container = use_cases(kind)

    async def dependency(request: Request) -> T:
        return pick(await container(request))

    return dependency


class CorrelationMiddleware:
    """Every request gets a correlation id (``X-Correlation-ID`` in, or a new one), sent
    back on the answer and on every log line, and its latency recorded by route
    template (not by raw path: ids would explode it).

    Plain ASGI (not ``BaseHTTPMiddleware``): the id's context variable is set in the
    task that runs the route, and no extra task and stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under its correlation id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = Headers(scope=scope).get("x-correlation-id") or uuid.uuid4().hex
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(raw=list(message.get("headers", ())))
                headers["X-Correlation-ID"] = cid
                message = {**message, "headers": headers.raw}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
            template = getattr(scope.get("route"), "path", "(unmatched)")
            metrics: Metrics = scope["app"].state.metrics
            metrics.observe_http(template, scope["method"], status, time.perf_counter() - started)


async def _start_broker(runtime: Runtime) -> None:
    """Create topics and start consumers, retrying while the broker is away."""
    settings = runtime.settings
    delay = 0.2
    while True:
        try:
            if settings.kafka_create_topics:
                await ensure_topics(settings.kafka_bootstrap_servers, **client_options(settings))
            await runtime.broker.connect()
            runtime.broker_connected.set()
            log.info("broker connected", bootstrap=settings.kafka_bootstrap_servers)
            await runtime.broker.start()
            runtime.broker_started.set()
            log.info("consumers joined")
            return
        except Exception as exc:
            runtime.broker_connected.clear()
            log.warning("broker not reachable yet", error=repr(exc), retry_in=delay)
            with contextlib.suppress(Exception):
                await runtime.broker.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _watch_epoch(runtime: Runtime) -> None:
    """Notice a reset (memory-only) broker: recreate topics and position every partition
    again from the consumer's resume points (``runtime.resume``)."""
    path = runtime.settings.broker_epoch_file
    if path is None:
        return
    seen = read_epoch(path)
    while True:
        await asyncio.sleep(0.5)
        epoch = read_epoch(path)
        if epoch is None or epoch == seen:
            continue
        log.warning("broker epoch changed", old=seen, new=epoch)
        try:
            await ensure_topics(
                runtime.settings.kafka_bootstrap_servers, **client_options(runtime.settings)
            )
            await runtime.broker_started.wait()
            runtime.consumer.after_reset()
            seen = epoch
        except Exception as exc:
            log.warning("could not adopt the new broker yet", error=repr(exc))


def build_app(spec: ServiceSpec) -> FastAPI:
    """The service's ASGI app; its lifespan owns every connection and task."""
    settings = spec.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level, settings.log_json)
        refuse_auto_created_topics()
        if configure_tracing(spec.name):
            log.info("tracing on: exporting spans over OTLP")
        log.info("lifespan starting")
        if spec.migrate_on_start:
            await ensure_database(settings.database_url)
            await migrate(spec.name, settings.database_url)
            log.info("migrations checked")
        engine = make_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=spec.name,
            # Idempotent producers need InitProducerId, which the embedded broker
            # (Tansu, memory storage) refuses; duplicates are the inbox's job anyway.
            enable_idempotence=False,
            # Through the root handler, so FastStream's lines are JSON like ours.
            logger=logging.getLogger(f"prodigy.{spec.name}.broker"),
            security=broker_security(settings),
        )
        metrics: Metrics = app.state.metrics
        consumer = Consumer(
            spec.name,
            engine,
            broker,
            settings,
            spec.handlers,
            metrics,
            batch_handler=spec.batch_handler,
            batch_types=spec.batch_types,
            ignored=spec.ignored,
        )
        consumer.register()
        runtime = Runtime(
            spec, engine, broker, consumer, OutboxRelay(engine, settings, metrics), metrics
        )
        app.state.runtime = runtime
        if spec.container is not None:
            runtime.container = spec.container(runtime)
        if settings.jwks_path is not None:
            app.state.verifier = TokenVerifier.from_file(
                settings.jwks_path, issuer=settings.token_issuer, audience=settings.token_audience
            )
            # Every service that verifies tokens keeps the cut-offs (``token_cutoffs``).
            app.state.cutoffs = CutOffs(engine)
            runtime.spawn(app.state.cutoffs.listen(), "cutoffs")
        if spec.idempotent:
            app.state.idempotency_keys = KeyStore(engine)
            runtime.spawn(idempotency.purge_forever(app.state.idempotency_keys), "idempotency")
        if spec.throttled:
            app.state.throttle = Throttle(engine, settings.trusted_networks)
            runtime.spawn(throttle.purge_forever(app.state.throttle), "throttle")
        for hook in spec.startup:
            await hook(runtime)
        runtime.spawn(_start_broker(runtime), "broker")
        runtime.spawn(runtime.relay.run(), "relay")
        runtime.spawn(_watch_epoch(runtime), "epoch")
        for worker in spec.background:
            runtime.spawn(worker(runtime), getattr(worker, "__name__", "worker"))
        log.info("service started", port=settings.http_port)
        try:
            yield
        finally:
            for task in runtime.tasks:
                task.cancel()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            if consumer.resume is not None:
                await consumer.resume.close()
            await runtime.relay.stop()
            with contextlib.suppress(Exception):
                await broker.stop()
            await engine.dispose()
            await asyncio.to_thread(flush_tracing)
            log.info("service stopped")

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        # FastAPI's own spans record the raw path and query, and ours carry tokens
        # (/v1/invitations/{token}/accept, /v1/join/{token}): TracingMiddleware
        # records the route template instead. Metrics are Prometheus' (/metrics).
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    problems.install(app, spec.problems)
    app.state.metrics = Metrics(spec.name)
    # Middleware added first runs innermost. Outermost first, a request meets: tracing,
    # the security headers, the correlation id, the 500 for anything unexpected (inside
    # the correlation middleware, so that answer and its log line carry the id), the
    # body limit, the text guard (before any key is claimed for a request it refuses),
    # ``Idempotency-Key``.
    if spec.idempotent:
        # Inside the correlation middleware: replayed answers get an id and a metric too.
        idempotency.install(app, spec.idempotent)
    app.add_middleware(TextGuard)
    # Outside everything that reads a body (the text guard and the idempotency
    # middleware read one).
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, overrides=spec.body_limits)
    app.add_middleware(problems.UnexpectedErrors)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(SecurityHeaders)
    # Added last, so outermost: the request's span covers everything else.
    app.add_middleware(TracingMiddleware)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], operation_id="readyz")
    async def readyz(request: Request, response: Response) -> dict[str, str]:
        """Ready: the database answers and the broker is connected (503 otherwise).

        ``consumers`` says whether the service's consumers have joined their groups yet
        (``joining`` until then). It does not hold readiness back: requests need the
        database and the broker, and what the consumers have not read yet waits for them
        in the topics. After a crash the join waits for the group to drop the dead
        member (the consumer session timeout), seconds in which the service can serve.
        """
        runtime: Runtime = request.app.state.runtime
        checks = {"database": "ok", "broker": "ok"}
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if not runtime.broker_connected.is_set():
            checks["broker"] = "connecting"
        elif not await runtime.broker.ping(timeout=2):
            checks["broker"] = "unavailable"
        if any(v != "ok" for v in checks.values()):
            response.status_code = 503
        checks["consumers"] = "ok" if runtime.broker_started.is_set() else "joining"
        return checks

    @app.get("/metrics", tags=["health"], operation_id="metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics (gauges are computed at scrape time)."""
        runtime: Runtime = request.app.state.runtime
        await _refresh_gauges(runtime)
        body = generate_latest(runtime.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    for router in spec.routers:
        app.include_router(router)
    # Last: the statuses other wrappers add (idempotency's 409) get the problem type too.
    openapi_doc.install(app, spec.problems)
    return app


async def _refresh_gauges(runtime: Runtime) -> None:
    metrics, name = runtime.metrics, runtime.spec.name
    with contextlib.suppress(Exception):  # a scrape during an outage still answers
        count, age = await backlog(runtime.engine)
        metrics.outbox_backlog.labels(name).set(count)
        metrics.outbox_oldest_age.labels(name).set(age or 0.0)
    with contextlib.suppress(Exception):
        metrics.dead_letters_unreplayed.labels(name).set(
            await dead_letter_store.unsettled(runtime.engine, name)
        )
    # Only the partitions assigned now: a revoked one's last figure would otherwise
    # stay exported for ever (and keep a lag alert firing on this replica).
    metrics.consumer_lag.clear()
    for subscriber in runtime.broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None:
            continue
        with contextlib.suppress(Exception):
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                position = await consumer.position(tp)
                if high is not None:
                    metrics.consumer_lag.labels(name, tp.topic, str(tp.partition)).set(
                        max(high - position, 0)
                    )


def serve(spec: ServiceSpec) -> None:
    """Run the service's HTTP server (and everything in its lifespan) until stopped."""
    config = uvicorn.Config(
        build_app(spec),
        host=spec.settings.http_host,
        port=spec.settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    uvicorn.Server(config).run()
