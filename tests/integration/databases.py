"""A database of its own for an integration test module: a fast embedded PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from prodigy_users.runtime.db import ensure_database, upgrade
from prodigy_users.stack.postgres import scratch_postgres


@asynccontextmanager
async def own_database(name: str, *, migrate: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine on database ``name`` of a PostgreSQL started for it, stopped after.

    ``migrate``: upgraded to head with the service ``name``'s migrations.
    """
    async with scratch_postgres(prefix=f"{name}-it-") as pg:
        url = pg.database_url(name)
        await ensure_database(url)
        if migrate:
            await asyncio.to_thread(upgrade, name, url)
        engine = create_async_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()
