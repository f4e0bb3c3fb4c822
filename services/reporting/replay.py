"""Rebuilding the read model from the topics, and how a running reporting follows a rebuild.

``rebuild`` (``prodigy-users replay reporting``) creates a fresh schema beside the
live one, migrates it, reads every topic reporting consumes from the beginning
through the same handlers and fold as live consumption, then switches over in one
transaction: the live schema (``public``) is renamed away and the new one takes its
name, so readers never see a half-built model; the dead letters the live consumer
kept move over with their ids. A failed rebuild drops its schema and leaves the
live model untouched.

Running reporting replicas notice the new generation in ``read_model``, drop their
pooled connections, drop their resume points and read their partitions from the
beginning again: whatever arrived after the replay stopped reading is applied on
top (the inbox, rebuilt with the model, skips everything the replay applied).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.db import make_engine, upgrade
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.replay import Progress, ReplayCount, read_from_beginning
from prodigy_users.runtime.service import Runtime

from .consumers import BATCH, BATCH_TYPES, HANDLERS
from .settings import Settings
from .tables import read_model

log = get_logger(__name__)

LIVE_SCHEMA = "public"
POLL_S = 1.0


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did."""

    generation: str
    events: int
    seconds: float
    replaced_schema: str | None  # kept for inspection with ``keep_old``, else dropped

    @property
    def per_second(self) -> float:
        """Events applied per second while reading."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _quoted(name: str) -> str:
    # Our own generated names only (letters, digits, underscores); quoted all the same.
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


async def rebuild(
    settings: Settings,
    *,
    idle_s: float = 2.0,
    keep_old: bool = False,
    progress: Progress | None = None,
) -> Rebuilt:
    """Rebuild reporting's read model from the topics and switch the service over to it."""
    generation = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "_" + secrets.token_hex(3)
    schema, replaced = f"rebuild_{generation}", f"replaced_{generation}"
    admin = make_engine(settings.database_url, pool_size=1)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {_quoted(schema)}"))
        try:
            count = await _fill(settings, schema, idle_s, progress)
            async with admin.begin() as conn:
                await _switch(conn, schema, replaced)
                await conn.execute(
                    sa.insert(read_model).values(
                        id=1,
                        generation=generation,
                        built_at=datetime.now(UTC),
                        events=count.records,
                    )
                )
        except BaseException:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE"))
            raise
        log.info("read model switched over", generation=generation, events=count.records)
        if not keep_old:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f"DROP SCHEMA {_quoted(replaced)} CASCADE"))
        return Rebuilt(generation, count.records, count.seconds, replaced if keep_old else None)
    finally:
        await admin.dispose()


async def _switch(conn: AsyncConnection, schema: str, replaced: str) -> None:
    """One transaction: readers see the old model or the new one, never a mix."""
    await conn.execute(sa.text(f"ALTER SCHEMA {LIVE_SCHEMA} RENAME TO {_quoted(replaced)}"))
    await conn.execute(sa.text(f"ALTER SCHEMA {_quoted(schema)} RENAME TO {LIVE_SCHEMA}"))
    # Extensions (pg_trgm for the search index) were installed in the old schema:
    # move them along, or dropping the old schema would take them and our indexes.
    moved = await conn.execute(
        sa.text(
            "SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE n.nspname = :old AND e.extrelocatable"
        ),
        {"old": replaced},
    )
    for (name,) in list(moved):
        await conn.execute(sa.text(f'ALTER EXTENSION "{name}" SET SCHEMA {LIVE_SCHEMA}'))
    # Dead letters are not the model: the ones kept (and their ids, which operators
    # use) stay, whatever the rebuild read.
    await conn.execute(
        sa.text(
            f"INSERT INTO {LIVE_SCHEMA}.dead_letters "  # noqa: S608 - our own names
            f"SELECT * FROM {_quoted(replaced)}.dead_letters"
        )
    )
    await conn.execute(
        sa.text(
            f"SELECT setval(pg_get_serial_sequence('{LIVE_SCHEMA}.dead_letters', 'id'), "  # noqa: S608
            f"(SELECT max(id) FROM {LIVE_SCHEMA}.dead_letters))"
        )
    )


async def _fill(
    settings: Settings, schema: str, idle_s: float, progress: Progress | None
) -> ReplayCount:
    await asyncio.to_thread(upgrade, "reporting", settings.database_url, schema=schema)
    # A rebuild that crashes is started again, so commits need not wait for the disk.
    engine = make_engine(
        settings.database_url, schema=schema, server_settings={"synchronous_commit": "off"}
    )
    try:
        # Secondary indexes are built once at the end: far cheaper than row by row.
        async with engine.begin() as conn:
            indexes = await _drop_secondary_indexes(conn, schema)
        consumer = Consumer(
            "reporting",
            engine,
            # Never started: a replay does not dead-letter (the live consumer did).
            KafkaBroker(settings.kafka_bootstrap_servers),
            settings,
            HANDLERS,
            batch_handler=BATCH,
            batch_types=BATCH_TYPES,
            dead_letter=False,
        )
        count = await read_from_beginning(consumer, settings, idle_s=idle_s, progress=progress)
        async with engine.begin() as conn:
            for definition in indexes:
                await conn.execute(sa.text(definition))
        return count
    finally:
        await engine.dispose()


async def _drop_secondary_indexes(conn: AsyncConnection, schema: str) -> list[str]:
    """Drop the schema's non-unique indexes; their definitions, to create them again.

    Unique ones stay: the upserts and the inbox rely on them while the model fills.
    """
    rows = await conn.execute(
        sa.text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE n.nspname = :schema AND NOT x.indisunique AND NOT x.indisprimary"
        ),
        {"schema": schema},
    )
    found = [(name, definition) for name, definition in rows]
    for name, _ in found:
        await conn.execute(sa.text(f"DROP INDEX {_quoted(schema)}.{_quoted(name)}"))
    return [definition for _, definition in found]


async def generation(engine: AsyncEngine) -> str | None:
    """The live read model's generation (None: never rebuilt)."""
    async with engine.connect() as conn:
        value: str | None = (
            await conn.execute(sa.select(read_model.c.generation))
        ).scalar_one_or_none()
        return value


async def follow_rebuilds(runtime: Runtime) -> None:
    """Background worker: after a rebuild, reconnect and read every topic again."""
    seen: str | None = None
    known = False
    while True:
        if known:
            await asyncio.sleep(POLL_S)
        try:
            current = await generation(runtime.engine)
        except Exception as exc:  # the database is away or mid-switch: look again
            log.debug("read model generation unavailable", error=repr(exc))
            await asyncio.sleep(POLL_S)
            continue
        if not known:
            seen, known = current, True
            continue
        if current == seen:
            continue
        log.warning("read model rebuilt: reading every topic again", generation=current)
        await runtime.engine.dispose()
        await runtime.broker_started.wait()
        await runtime.consumer.start_over()
        seen = current
