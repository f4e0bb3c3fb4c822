"""A service's use cases reach its routes typed: one container on the runtime, one
dependency that checks its type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.runtime import problems
from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.metrics import Metrics
from prodigy_users.runtime.relay import OutboxRelay
from prodigy_users.runtime.service import Runtime, ServiceSpec, use_cases
from prodigy_users.runtime.settings import ServiceSettings


@dataclass(frozen=True)
class Seats:
    free: int


@dataclass(frozen=True)
class Tables:
    free: int


SeatsService = Annotated[Seats, Depends(use_cases(Seats))]
TablesService = Annotated[Tables, Depends(use_cases(Tables))]


def _runtime() -> Runtime:
    """A runtime as ``build_app`` makes it, none of its parts started."""
    settings = ServiceSettings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    spec = ServiceSpec("seats", settings, "Seats", "A test service.")
    engine = create_async_engine(settings.database_url)
    broker = KafkaBroker("127.0.0.1:1")
    metrics = Metrics("seats")
    consumer = Consumer("seats", engine, broker, settings, {})
    return Runtime(spec, engine, broker, consumer, OutboxRelay(engine, settings), metrics)


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app = FastAPI()
    problems.install(app)
    runtime = _runtime()
    app.state.runtime = runtime

    @app.get("/seats")
    async def seats(wired: SeatsService) -> dict[str, int]:
        return {"free": wired.free}

    @app.get("/tables")
    async def tables(wired: TablesService) -> dict[str, int]:
        return {"free": wired.free}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, runtime
    await runtime.engine.dispose()


async def test_routes_get_the_container_the_service_wired(
    client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    http, runtime = client
    runtime.container = Seats(free=3)
    assert runtime.use_cases(Seats) == Seats(free=3)
    r = await http.get("/seats")
    assert (r.status_code, r.json()) == (200, {"free": 3})


async def test_a_container_of_another_type_or_none_is_refused(
    client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    http, runtime = client
    with pytest.raises(RuntimeError, match="Seats is not wired"):
        runtime.use_cases(Seats)
    assert (await http.get("/seats")).status_code == 500
    runtime.container = Seats(free=3)
    with pytest.raises(RuntimeError, match="Tables is not wired"):
        runtime.use_cases(Tables)
    assert (await http.get("/tables")).status_code == 500
