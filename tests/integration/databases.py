"""A database of its own for an integration test module, on one fast embedded PostgreSQL
per test process.

Starting a cluster and running a service's migrations took one to two seconds for each
module; now the cluster starts once, each service's migrations run once into a template,
and each module gets a fresh copy of it (``CREATE DATABASE ... TEMPLATE``), dropped after.
A module still sees only its own database: what one leaves behind no other sees.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from prodigy_users.runtime.db import asyncpg_dsn, ensure_database, upgrade
from prodigy_users.stack.postgres import Postgres, scratch_postgres

_server: tuple[AsyncExitStack, Postgres] | None = None
_templates: dict[str, str] = {}
_lock = asyncio.Lock()
_numbers = itertools.count(1)


async def _postgres() -> Postgres:
    """This process's PostgreSQL, started on first use (``stop_shared`` stops it)."""
    global _server
    if _server is None:
        resources = AsyncExitStack()
        pg = await resources.enter_async_context(scratch_postgres(prefix="it-"))
        _server = (resources, pg)
    return _server[1]


async def _execute(pg: Postgres, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(pg.database_url("postgres")))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _template(pg: Postgres, service: str) -> str:
    """A database migrated to head with ``service``'s migrations, made once."""
    if service not in _templates:
        name = f"{service}_template"
        url = pg.database_url(name)
        await ensure_database(url)
        await asyncio.to_thread(upgrade, service, url)
        _templates[service] = name
    return _templates[service]


@asynccontextmanager
async def own_database(name: str, *, migrate: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database for ``name``, dropped after.

    ``migrate``: upgraded to head with the service ``name``'s migrations.
    """
    async with _lock:  # one server, one template per service, even if asked at once
        pg = await _postgres()
        database = f"{name}_{next(_numbers)}"
        if migrate:
            template = await _template(pg, name)
            await _execute(pg, f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        else:
            await _execute(pg, f'CREATE DATABASE "{database}"')
    engine = create_async_engine(pg.database_url(database))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _execute(pg, f'DROP DATABASE "{database}" WITH (FORCE)')


async def stop_shared() -> None:
    """Stop this process's PostgreSQL if it was started (the end of the session)."""
    global _server
    if _server is not None:
        resources, _ = _server
        _server = None
        _templates.clear()
        await resources.aclose()
