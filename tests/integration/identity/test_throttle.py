"""Sign-in throttling across replicas: two identity apps, each with its own engine and
lifespan (as two pods), on one PostgreSQL, share every count.

The apps run in this process through ASGI; their broker is unreachable (nothing here
needs Kafka: the relay and consumers keep retrying in the background).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.identity import store
from prodigy_users.identity.app import spec
from prodigy_users.identity.deps import SIGN_IN_BY_ACCOUNT
from prodigy_users.identity.settings import Settings
from prodigy_users.runtime.keys import generate_keys
from prodigy_users.runtime.passwords import hash_password
from prodigy_users.runtime.service import build_app
from prodigy_users.runtime.throttle_rules import key_of
from prodigy_users.runtime.throttle_store import throttle_counts
from tests.integration.databases import own_database

pytestmark = pytest.mark.timeout(180)

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"


@pytest.fixture(scope="module")
def keys() -> Iterator[dict[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="identity-keys-") as tmp:
        yield generate_keys(Path(tmp))


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with own_database("identity") as eng:
        yield eng


@pytest.fixture(scope="module")
async def replicas(
    engine: AsyncEngine, keys: dict[str, Path]
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two identity replicas (apps with their own lifespan and engine) on one database."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        kafka_bootstrap_servers="127.0.0.1:9",
        kafka_create_topics=False,
        jwks_path=keys["jwks"],
        signing_key_path=keys["signing_key"],
        seal_public_key_path=keys["seal_public"],
        trusted_proxies="127.0.0.1",
        log_json=False,
        log_level="WARNING",
    )
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = build_app(spec(settings))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://identity")
            clients.append(await stack.enter_async_context(client))
        yield clients


async def account(engine: AsyncEngine) -> str:
    email = f"throttle-{uuid.uuid4().hex[:10]}@example.org"
    hashed = await asyncio.to_thread(hash_password, PASSWORD)
    async with engine.begin() as conn:
        await store.insert_account(
            conn,
            uuid.uuid4(),
            email,
            email,
            "Tess Throttle",
            password_hash=hashed,
            confirmed_at=datetime.now(UTC),
        )
    return email


_ADDRESSES = itertools.count(1)


def address() -> str:
    """A client address no other test uses (the replicas trust 127.0.0.1 as a proxy)."""
    return f"198.51.100.{next(_ADDRESSES)}"


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, client_ip: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": client_ip},
    )


async def end_lock(engine: AsyncEngine, email: str) -> None:
    """Let the account's lock run out now (the clock cannot be waited on in a test)."""
    key = key_of(SIGN_IN_BY_ACCOUNT.name, email_key(email))
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(throttle_counts)
            .where(throttle_counts.c.key == key)
            .values(locked_until=sa.func.now() - sa.text("interval '1 second'"))
        )
        assert result.rowcount == 1


async def test_two_replicas_share_one_count_per_account(
    replicas: list[httpx.AsyncClient], engine: AsyncEngine
) -> None:
    email, ip = await account(engine), address()
    statuses = [(await sign_in(replicas[n % 2], email, WRONG, ip)).status_code for n in range(5)]
    assert statuses == [401] * 5
    for replica in replicas:
        locked = await sign_in(replica, email, PASSWORD, ip)  # the right password, too
        assert locked.status_code == 429
        assert locked.json()["type"].endswith("/too-many-attempts")
        assert 0 < int(locked.headers["Retry-After"]) <= 30
    await end_lock(engine, email)
    ok = await sign_in(replicas[1], email, PASSWORD, ip)
    assert ok.status_code == 200, ok.text
    # The success forgot the failures: five free ones again, on the other replica.
    again = [(await sign_in(replicas[0], email, WRONG, ip)).status_code for _ in range(6)]
    assert again == [401] * 5 + [429]


async def test_a_burst_across_both_replicas_gets_exactly_the_free_attempts(
    replicas: list[httpx.AsyncClient], engine: AsyncEngine
) -> None:
    # Charged on arrival, in one transaction per attempt: 20 simultaneous guesses
    # split over two replicas cannot get more than the five free ones.
    email, ip = await account(engine), address()
    answers = await asyncio.gather(*(sign_in(replicas[n % 2], email, WRONG, ip) for n in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 5 + [429] * 15


async def test_an_unknown_address_is_throttled_exactly_like_a_known_one(
    replicas: list[httpx.AsyncClient], engine: AsyncEngine
) -> None:
    known, ip = await account(engine), address()
    unknown = f"nobody-{uuid.uuid4().hex[:10]}@example.org"
    seen = {}
    for email in (known, unknown):
        answers = [await sign_in(replicas[n % 2], email, WRONG, ip) for n in range(7)]
        seen[email] = [(r.status_code, r.json()["type"].rsplit("/", 1)[-1]) for r in answers]
    assert seen[known] == seen[unknown]
    assert seen[known] == [(401, "invalid-credentials")] * 5 + [(429, "too-many-attempts")] * 2


async def test_the_address_count_is_shared_too(
    replicas: list[httpx.AsyncClient], engine: AsyncEngine
) -> None:
    ip = address()
    # 50 failures from one address, each for another account (so no account locks).
    for n in range(50):
        r = await sign_in(replicas[n % 2], f"spray-{uuid.uuid4().hex[:8]}@example.org", WRONG, ip)
        assert r.status_code == 401, (n, r.text)
    email = await account(engine)
    for replica in replicas:
        refused = await sign_in(replica, email, PASSWORD, ip)
        assert refused.status_code == 429
    # Another address is not affected.
    assert (await sign_in(replicas[0], email, PASSWORD, address())).status_code == 200


async def test_nothing_of_an_address_or_email_is_stored_in_the_clear(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(throttle_counts))).all()
    assert rows, "the tests above left counts"
    dump = json.dumps([[str(v) for v in row] for row in rows])
    assert "@example.org" not in dump and "198.51.100." not in dump
