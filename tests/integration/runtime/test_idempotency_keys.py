"""The Idempotency-Key middleware and its key store, on a small app and a real PostgreSQL
(membership's migrations create the table): replays, mismatches, keys in use, failures
that release the key, takeover of a dead holder's key, expiry and the purge."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime import idempotency, problems
from prodigy_users.runtime.auth import CurrentPrincipal, TokenIssuer, TokenVerifier
from prodigy_users.runtime.idempotency import IdempotencyMiddleware, current_key
from prodigy_users.runtime.idempotency_store import KeyStore, idempotency_keys
from prodigy_users.runtime.keys import jwks_for
from tests.integration.databases import own_database

ISSUER, AUDIENCE = "test-issuer", "test-audience"
OPERATIONS = frozenset({"make", "flaky", "explode", "slow", "mine"})
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with own_database("membership") as engine:
        yield engine


class Thing:
    """What the test app's routes did, and a gate the slow route waits at."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.keys: list[str | None] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()


def _app(engine: AsyncEngine, thing: Thing, issuer_key: rsa.RSAPrivateKey) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    idempotency.install(app, OPERATIONS)
    app.state.idempotency_keys = KeyStore(engine)
    app.state.verifier = TokenVerifier(
        jwks_for(issuer_key, kid="k1"), issuer=ISSUER, audience=AUDIENCE
    )

    @app.post("/things", operation_id="make", status_code=201)
    async def make(request: Request) -> JSONResponse:
        thing.calls["make"] += 1
        thing.keys.append(current_key())
        body = await request.body()
        n = thing.calls["make"]
        return JSONResponse(
            {"n": n, "echo": body.decode()},
            status_code=201,
            headers={"Location": f"/things/{n}", "X-Not-Kept": "1"},
        )

    @app.post("/flaky", operation_id="flaky")
    async def flaky() -> JSONResponse:
        thing.calls["flaky"] += 1
        if thing.calls["flaky"] == 1:
            return JSONResponse({"detail": "later"}, status_code=503)
        return JSONResponse({"ok": True}, status_code=201)

    @app.post("/explode", operation_id="explode")
    async def explode() -> JSONResponse:
        thing.calls["explode"] += 1
        if thing.calls["explode"] == 1:
            raise RuntimeError("boom")
        return JSONResponse({"ok": True}, status_code=201)

    @app.post("/slow", operation_id="slow")
    async def slow() -> JSONResponse:
        thing.calls["slow"] += 1
        thing.entered.set()
        await thing.gate.wait()
        return JSONResponse({"n": thing.calls["slow"]}, status_code=201)

    @app.post("/mine", operation_id="mine")
    async def mine(principal: CurrentPrincipal) -> JSONResponse:
        thing.calls["mine"] += 1
        return JSONResponse({"account": str(principal.account_id)}, status_code=201)

    @app.post("/unlisted", operation_id="unlisted")
    async def unlisted() -> JSONResponse:
        thing.calls["unlisted"] += 1
        return JSONResponse({}, status_code=201)

    return app


class Harness:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.thing = Thing()
        self.key = SIGNING_KEY
        self.app = _app(engine, self.thing, self.key)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://test")

    def token(self, subject: uuid.UUID) -> str:
        issuer = TokenIssuer(self.key, kid="k1", issuer=ISSUER, audience=AUDIENCE)
        return issuer.issue(subject, ttl=timedelta(minutes=5))

    async def post(
        self, path: str, key: str | None, body: bytes = b"{}", **headers: str
    ) -> httpx.Response:
        sent = {"content-type": "application/json", **headers}
        if key is not None:
            sent["Idempotency-Key"] = key
        return await self.http.post(path, content=body, headers=sent)

    async def row(self, key: str, scope: str = "anonymous") -> Any:
        t = idempotency_keys.c
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    sa.select(idempotency_keys).where(t.scope == scope, t.key == key)
                )
            ).first()

    async def age(self, key: str, **shift: Any) -> None:
        """Move a key's clocks: ``created_at``/``locked_until`` by the given timedeltas."""
        t = idempotency_keys.c
        values = {name: getattr(t, name) + delta for name, delta in shift.items()}
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(idempotency_keys).where(t.key == key).values(**values))


@pytest.fixture
async def h(engine: AsyncEngine) -> AsyncIterator[Harness]:
    harness = Harness(engine)
    yield harness
    await harness.http.aclose()


def _key() -> str:
    return str(uuid.uuid4())


async def test_a_retry_is_answered_what_the_first_attempt_was(h: Harness) -> None:
    key = _key()
    first = await h.post("/things", key, b'{"a": 1}')
    again = await h.post("/things", f'"{key}"', b'{"a": 1}')  # quoted: the same key

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["location"] == first.headers["location"] == "/things/1"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert "x-not-kept" not in again.headers
    assert h.thing.calls["make"] == 1, "the retry did not run the route"
    assert h.thing.keys == [f"anonymous:{key}"], "the route saw the caller-scoped key"
    assert (await h.row(key)).state == "done"


async def test_a_different_request_with_the_key_is_refused(h: Harness) -> None:
    key = _key()
    assert (await h.post("/things", key, b'{"a": 1}')).status_code == 201
    for path, body in (("/things", b'{"a": 2}'), ("/things?x=1", b'{"a": 1}'), ("/flaky", b"{}")):
        r = await h.post(path, key, body)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/idempotency-key-mismatch")
    assert h.thing.calls["make"] == 1 and h.thing.calls["flaky"] == 0


async def test_keys_are_per_caller(h: Harness) -> None:
    key = _key()
    ann, bob = uuid.uuid4(), uuid.uuid4()
    a = await h.post("/mine", key, authorization=f"Bearer {h.token(ann)}")
    b = await h.post("/mine", key, authorization=f"Bearer {h.token(bob)}")
    a2 = await h.post("/mine", key, authorization=f"Bearer {h.token(ann)}")

    assert a.json() == {"account": str(ann)} and b.json() == {"account": str(bob)}
    assert a2.content == a.content and a2.headers["idempotent-replayed"] == "true"
    assert h.thing.calls["mine"] == 2
    assert (await h.row(key, scope=str(ann))) is not None
    assert (await h.row(key, scope=str(bob))) is not None


async def test_an_invalid_token_passes_untouched_and_the_route_says_401(h: Harness) -> None:
    key = _key()
    for _ in range(2):
        r = await h.post("/mine", key, authorization="Bearer not.a.token")
        assert r.status_code == 401 and "idempotent-replayed" not in r.headers
    assert await h.row(key) is None
    # Without a token the key is the anonymous caller's, and a 401 is not kept either.
    for _ in range(2):
        r = await h.post("/mine", key)
        assert r.status_code == 401 and "idempotent-replayed" not in r.headers
    assert await h.row(key) is None
    assert h.thing.calls["mine"] == 0


async def test_an_invalid_key_is_a_422_naming_the_header(h: Harness) -> None:
    for bad in ("", "has space", "x" * 256):
        r = await h.post("/things", bad)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "Idempotency-Key"
    assert h.thing.calls["make"] == 0


async def test_requests_without_a_key_or_to_other_routes_are_not_recorded(h: Harness) -> None:
    assert (await h.post("/things", None)).status_code == 201
    assert (await h.post("/things", None)).status_code == 201
    key = _key()
    assert (await h.post("/unlisted", key)).status_code == 201
    assert (await h.post("/unlisted", key)).status_code == 201
    assert h.thing.calls == Counter({"make": 2, "unlisted": 2})
    assert await h.row(key) is None


async def test_a_server_error_or_exception_releases_the_key_so_a_retry_runs(h: Harness) -> None:
    key = _key()
    assert (await h.post("/flaky", key)).status_code == 503
    assert await h.row(key) is None
    assert (await h.post("/flaky", key)).status_code == 201
    assert h.thing.calls["flaky"] == 2

    key = _key()
    assert (await h.post("/explode", key)).status_code == 500
    assert await h.row(key) is None
    assert (await h.post("/explode", key)).status_code == 201
    replay = await h.post("/explode", key)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert h.thing.calls["explode"] == 2


async def test_a_request_still_running_holds_its_key(h: Harness) -> None:
    key = _key()
    first = asyncio.create_task(h.post("/slow", key))
    await asyncio.wait_for(h.thing.entered.wait(), 10)

    busy = await h.post("/slow", key)
    assert busy.status_code == 409, busy.text
    assert busy.json()["type"].endswith("/idempotency-key-in-use")
    assert busy.headers["retry-after"] == "1"
    mismatch = await h.post("/slow", key, b'{"other": true}')
    assert mismatch.status_code == 422

    h.thing.gate.set()
    done = await asyncio.wait_for(first, 10)
    assert done.status_code == 201
    replay = await h.post("/slow", key)
    assert replay.content == done.content and replay.headers["idempotent-replayed"] == "true"
    assert h.thing.calls["slow"] == 1


async def test_the_key_of_a_holder_that_died_is_taken_over_by_the_same_request(
    h: Harness, engine: AsyncEngine
) -> None:
    key = _key()
    keys = KeyStore(engine)
    dead = await keys.claim("anonymous", key, "irrelevant")
    assert dead.verdict == "run" and dead.owner is not None
    # Its lease is still running: the key is in use (whatever the request).
    assert (await keys.claim("anonymous", key, "irrelevant")).verdict == "in_use"
    assert (await keys.claim("anonymous", key, "another")).verdict == "mismatch"
    await h.age(key, locked_until=timedelta(minutes=-1))
    # A different request still may not take it over.
    assert (await keys.claim("anonymous", key, "another")).verdict == "mismatch"

    taker = await keys.claim("anonymous", key, "irrelevant")
    assert taker.verdict == "run" and taker.owner not in (None, dead.owner)
    assert taker.resumed and not dead.resumed
    # The dead holder, were it to wake, can neither renew nor store its answer.
    assert not await keys.renew("anonymous", key, dead.owner)
    assert not await keys.complete("anonymous", key, dead.owner, status=201, headers=[], body=b"")
    assert await keys.renew("anonymous", key, taker.owner)
    assert await keys.complete("anonymous", key, taker.owner, status=201, headers=[], body=b"x")
    replay = await keys.claim("anonymous", key, "irrelevant")
    assert (replay.verdict, replay.status, replay.body) == ("replay", 201, b"x")


async def test_the_middleware_runs_a_dead_holders_request_again(h: Harness) -> None:
    key = _key()
    assert (await h.post("/things", key)).status_code == 201
    # As if the process died after the route but before the answer was stored.
    t = idempotency_keys.c
    async with h.engine.begin() as conn:
        await conn.execute(
            sa.update(idempotency_keys)
            .where(t.key == key)
            .values(state="in_progress", status=None, body=None, headers=None)
        )
    assert (await h.post("/things", key)).status_code == 409
    await h.age(key, locked_until=timedelta(minutes=-1))
    again = await h.post("/things", key)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert h.thing.calls["make"] == 2, "the middleware alone runs it again (use cases dedupe)"


async def test_a_key_older_than_a_day_is_forgotten_and_purged(
    h: Harness, engine: AsyncEngine
) -> None:
    old, young = _key(), _key()
    assert (await h.post("/things", old, b'{"v": 1}')).status_code == 201
    assert (await h.post("/things", young)).status_code == 201
    await h.age(old, created_at=timedelta(hours=-25))

    # Forgotten: even a different request runs, and starts the key's new day.
    reused = await h.post("/things", old, b'{"v": 2}')
    assert reused.status_code == 201 and "idempotent-replayed" not in reused.headers
    assert h.thing.calls["make"] == 3

    await h.age(old, created_at=timedelta(hours=-25))
    assert await KeyStore(engine).purge() >= 1
    assert await h.row(old) is None
    assert await h.row(young) is not None


async def test_a_body_over_the_limit_passes_as_if_it_had_no_key(engine: AsyncEngine) -> None:
    app = FastAPI()
    calls: list[int] = []

    @app.post("/things", operation_id="make")
    async def make(request: Request) -> JSONResponse:
        calls.append(len(await request.body()))
        return JSONResponse({}, status_code=201)

    app.add_middleware(IdempotencyMiddleware, operations=frozenset({"make"}), max_body=64)
    app.state.idempotency_keys = KeyStore(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        key = _key()
        for _ in range(2):
            r = await http.post("/things", content=b"x" * 100, headers={"Idempotency-Key": key})
            assert r.status_code == 201
        small = await http.post("/things", content=b"x" * 10, headers={"Idempotency-Key": key})
        again = await http.post("/things", content=b"x" * 10, headers={"Idempotency-Key": key})
    assert calls == [100, 100, 10], "the large body reached the route whole, twice"
    assert again.headers["idempotent-replayed"] == "true" and small.status_code == 201
