"""Database engine, the create-if-missing helper, and Alembic migrations per service."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .loops import keep_running


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    schema: str | None = None,
    server_settings: dict[str, str] | None = None,
) -> AsyncEngine:
    """An async engine for one service's database (asyncpg underneath).

    ``schema`` puts that schema first on the search path (a read model being rebuilt);
    ``server_settings`` are further PostgreSQL settings for every connection.
    """
    options = dict(server_settings or {})
    if schema:
        options["search_path"] = schema
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"server_settings": options} if options else {},
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


_readers: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for reads that need no transaction around them.

    Its connections run in autocommit: a read costs one round trip instead of three
    (no BEGIN before it, no ROLLBACK when the connection goes back to the pool). Use it
    for one statement, or for statements that need not see one snapshot; anything
    that writes, locks or must be consistent across statements takes a transaction.
    """
    reader = _readers.get(engine)
    if reader is None:
        reader = _readers[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return reader


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection that PostgreSQL has already closed.

    This replaces ``pool_pre_ping``, whose ping is three round trips (BEGIN, a query,
    ROLLBACK) on every checkout: under load, a fifth of a request's trips to the
    database. A restarted or killed server closes its sockets, and the driver notices
    the moment the event loop reads the end of the stream, so this local check finds
    the connections a restart left behind without asking the server. A connection cut
    silently (a network gone without a reset) fails its first statement instead; the
    pool then drops it (SQLAlchemy's disconnect handling) and callers retry as they do
    for any other outage.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """The URL as asyncpg takes it (for connections of their own, outside the pool)."""
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (dev stack and tests)."""
    name = make_url(url).database
    assert name, "database URL names no database"
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Created concurrently by another process: that is what we wanted.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def migrations_dir(service: str) -> Path:
    """The directory of a service's migrations (``env.py``, ``versions/``).

    Resolved: a strict editable install reaches each file through a link of its own,
    and Alembic must list (and ``migrations new`` write) the real ``versions``
    directory, where a new revision is seen without installing again.
    """
    import importlib

    package = importlib.import_module(f"prodigy_users.{service}.migrations")
    assert package.__file__ is not None
    return Path(package.__file__).resolve().parent


def alembic_config(service: str, url: str, schema: str | None = None) -> Config:
    """Alembic configuration for one service's migrations, built in code (no ini file).

    With ``schema``, the tables (and Alembic's version table) go into that schema.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["service"] = service
    if schema is not None:
        cfg.attributes["schema"] = schema
    return cfg


def upgrade(service: str, url: str, revision: str = "head", *, schema: str | None = None) -> None:
    """Run a service's migrations up to ``revision`` (blocking; see ``migrate``)."""
    command.upgrade(alembic_config(service, url, schema), revision)


def downgrade(service: str, url: str, revision: str) -> None:
    """Run a service's migrations down to ``revision``."""
    command.downgrade(alembic_config(service, url), revision)


async def migrate(service: str, url: str) -> None:
    """Upgrade a service's database to head from async code.

    Alembic's env runs its own event loop, so it gets a thread of its own.
    """
    await asyncio.to_thread(upgrade, service, url)


async def notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    """``NOTIFY channel`` with ``payload``, delivered when this transaction commits, to
    every session that ``listen``s (in every process of the service)."""
    await conn.execute(select(func.pg_notify(channel, payload)))


async def listen(
    engine: AsyncEngine,
    channel: str,
    on_payload: Callable[[str], None],
    *,
    what: str,
    on_listening: Callable[[bool], None] | None = None,
) -> NoReturn:
    """Call ``on_payload`` with the payload of every ``NOTIFY channel`` for the life of
    the service, on a session of its own, listening again after the session is lost
    (while it is, nothing is heard: callers keep a slower poll as the net).

    ``on_listening(True)`` is called once each session listens, ``on_listening(False)``
    when it is lost: for callers that trust what they hold only while they hear.
    """

    async def session() -> None:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            lost = asyncio.Event()

            def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
                on_payload(payload)

            def gone(_conn: object) -> None:
                lost.set()

            await driver.add_listener(channel, heard)
            driver.add_termination_listener(gone)
            if on_listening is not None:
                on_listening(True)
            try:
                await lost.wait()
            finally:
                if on_listening is not None:
                    on_listening(False)
                with contextlib.suppress(Exception):
                    driver.remove_termination_listener(gone)
                    await driver.remove_listener(channel, heard)
        raise ConnectionError(f"the session listening on {channel} was lost")

    await keep_running(session, what=what)
