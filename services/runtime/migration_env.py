"""The body of every service's Alembic ``env.py`` (online migrations over asyncpg), and
how Alembic compares a service's models with its database.

The comparison is the same for ``prodigy-users migrations new`` (autogenerate, through
``env.py``) and for ``migrations check`` and the tests (``differences``), so a revision
the command writes is exactly what the check reports as missing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from .dead_letter_store import metadata as dead_letter_metadata
from .messaging_tables import metadata as messaging_metadata
from .resume_store import metadata as resume_metadata

MIGRATION_LOCK = 0x0B0B_0002

# Server defaults are compared too (``now()`` on ``created_at`` and the like): a
# default the model declares and no migration made would otherwise go unnoticed,
# and rows written by raw SQL (COPY) rely on them.
COMPARISON: dict[str, Any] = {"compare_type": True, "compare_server_default": True}


def targets(metadata: MetaData) -> list[MetaData]:
    """What a service's database must hold: the service's tables (its ``tables.metadata``)
    and the runtime's tables that every service's consumer and relay use: the outbox,
    inbox and relay state that every first revision creates (``runtime.messaging_tables``),
    the kept dead letters (``runtime.dead_letter_store``) and the resume points
    (``runtime.resume_store``). All are compared: leaving the runtime's tables out would
    make autogenerate propose dropping them."""
    return [metadata, messaging_metadata, dead_letter_metadata, resume_metadata]


def differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """What autogenerate would put in a new revision for this database: ``[]`` when the
    models (``metadata`` and the messaging tables) and the migrated schema agree."""
    migration = MigrationContext.configure(connection, opts=COMPARISON)
    diff: list[Any] = compare_metadata(migration, targets(metadata))  # type: ignore[arg-type]
    return diff


def run(target_metadata: MetaData) -> None:
    """Run the migrations Alembic asked for against the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    # A schema other than the default: a read model being rebuilt beside the live one.
    schema: str | None = context.config.attributes.get("schema")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=targets(target_metadata),
            version_table_schema=schema,
            **COMPARISON,
        )
        with context.begin_transaction():
            if schema is not None:
                # Inside the migration's transaction: a statement before it would open
                # one Alembic then leaves to us, and nothing would be committed.
                connection.execute(text(f'SET search_path TO "{schema}"'))
            # Replicas (and init containers) start together: one migrates, the others
            # wait here, then find the database already at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
