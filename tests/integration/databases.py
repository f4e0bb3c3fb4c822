"""A database of its own for an integration test module: a fast embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from prodigy_users.runtime.db import ensure_database, upgrade
from prodigy_users.stack.postgres import Postgres
from prodigy_users.stack.supervisor import free_ports


@asynccontextmanager
async def own_database(name: str, *, migrate: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine on database ``name`` of a PostgreSQL started for it, stopped after.

    ``migrate``: upgraded to head with the service ``name``'s migrations.
    """
    with tempfile.TemporaryDirectory(prefix=f"{name}-it-") as tmp:
        pg = Postgres(Path(tmp) / "pg", free_ports(1)[0], log_path=Path(tmp) / "pg.log", fast=True)
        await pg.start()
        try:
            url = pg.database_url(name)
            await ensure_database(url)
            if migrate:
                await asyncio.to_thread(upgrade, name, url)
            engine = create_async_engine(url)
            try:
                yield engine
            finally:
                await engine.dispose()
        finally:
            await pg.stop()
