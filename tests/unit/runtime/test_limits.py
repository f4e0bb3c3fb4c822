"""The request-body limit (``runtime.body_limit``) and the security headers
(``runtime.headers``) on a small app, through ASGI: no server, no network."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from prodigy_users.runtime import problems
from prodigy_users.runtime.body_limit import BodyLimit, size_text
from prodigy_users.runtime.headers import API_HEADERS, DOCS_CSP, SecurityHeaders

LIMIT = 1024


class Seen:
    """What the app got to see of the bodies."""

    def __init__(self) -> None:
        self.calls = 0
        self.sizes: list[int] = []


def _app(seen: Seen) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        seen.calls += 1
        body = await request.body()
        seen.sizes.append(len(body))
        return JSONResponse({"size": len(body)})

    @app.post("/uploads/{name}")
    async def upload(name: str, request: Request) -> JSONResponse:
        seen.calls += 1
        return JSONResponse({"size": len(await request.body())})

    @app.get("/own")
    async def own() -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Cache-Control": "max-age=60"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(BodyLimit, limit=LIMIT, overrides=[(r"/uploads/[^/]+", 10 * LIMIT)])
    app.add_middleware(SecurityHeaders)
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


class Chunks:
    """A request body streamed without a length, counting what was pulled from it."""

    def __init__(self, chunk: int, count: int) -> None:
        self.chunk, self.count, self.pulled = chunk, count, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"x" * self.chunk


async def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    seen = Seen()
    async with _client(_app(seen)) as client:
        r = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/request-too-large")
    assert r.json()["detail"] == "The request body is larger than the 1 KiB this call accepts."
    assert seen.calls == 0


async def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit() -> None:
    seen = Seen()
    body = Chunks(256, 1000)  # 256 KB on offer, the limit is 1 KiB
    async with _client(_app(seen)) as client:
        r = await client.post("/echo", content=body)
    assert r.status_code == 413
    assert r.json()["type"].endswith("/request-too-large")
    # The app saw the client go away and never got a body; at most one chunk past
    # the limit was read.
    assert seen.sizes == []
    assert body.pulled <= LIMIT // 256 + 2


async def test_bodies_within_the_limit_pass_streamed_or_not() -> None:
    seen = Seen()
    async with _client(_app(seen)) as client:
        exact = await client.post("/echo", content=b"x" * LIMIT)
        streamed = await client.post("/echo", content=Chunks(256, 4))
    assert (exact.status_code, exact.json()) == (200, {"size": LIMIT})
    assert (streamed.status_code, streamed.json()) == (200, {"size": LIMIT})


async def test_a_path_with_an_override_takes_more_and_still_has_a_limit() -> None:
    seen = Seen()
    async with _client(_app(seen)) as client:
        big = await client.post("/uploads/a", content=b"x" * (5 * LIMIT))
        too_big = await client.post("/uploads/a", content=b"x" * (10 * LIMIT + 1))
        nested = await client.post("/uploads/a/b", content=b"x" * (5 * LIMIT))
    assert (big.status_code, big.json()) == (200, {"size": 5 * LIMIT})
    assert too_big.status_code == 413
    assert "10 KiB" in too_big.json()["detail"]
    assert nested.status_code == 413  # the pattern matches the whole path only


def test_sizes_read_as_people_read_them() -> None:
    assert size_text(64 * 1024) == "64 KiB"
    assert size_text(10 * 1024 * 1024) == "10 MiB"
    assert size_text(1000) == "1000 bytes"


async def test_every_answer_carries_the_security_headers() -> None:
    seen = Seen()
    async with _client(_app(seen)) as client:
        answers = [
            await client.post("/echo", content=b"{}"),
            await client.post("/echo", content=b"x" * (LIMIT + 1)),  # refused by the limit
            await client.get("/nowhere"),  # 404
            await client.get("/boom"),  # an unhandled error
        ]
    for r in answers:
        for name, value in API_HEADERS.items():
            assert r.headers[name] == value, (r.request.url, name)
    boom = answers[-1]
    assert boom.status_code == 500
    assert boom.json()["type"].endswith("/internal-error")


async def test_a_route_keeps_its_own_value_and_the_docs_page_can_load_its_script() -> None:
    app = _app(Seen())
    async with _client(app) as client:
        own = await client.get("/own")
        docs = await client.get("/docs")
    assert own.headers["cache-control"] == "max-age=60"
    assert own.headers["x-frame-options"] == "DENY"
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == DOCS_CSP
    assert "frame-ancestors 'none'" in DOCS_CSP and "https://cdn.jsdelivr.net" in DOCS_CSP
