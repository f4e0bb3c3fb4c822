"""The body of every service's Alembic ``env.py``: online migrations over asyncpg."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATION_LOCK = 0x0B0B_0002


def run(target_metadata: MetaData | None = None) -> None:
    """Run the migrations Alembic asked for against the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    # A schema other than the default: a read model being rebuilt beside the live one.
    schema: str | None = context.config.attributes.get("schema")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection, target_metadata=target_metadata, version_table_schema=schema
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
