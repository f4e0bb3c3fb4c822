"""The engine's pool on a real PostgreSQL: a connection the server closed while it sat
in the pool is never handed out (the check that replaced ``pool_pre_ping`` costs no
round trip), a healthy one is handed out as it is, and a connection lent for reads
without a transaction (``reading``) comes back to the pool transactional again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.db import make_engine, reading
from tests.integration.databases import own_database
from tests.support import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def admin() -> AsyncIterator[AsyncEngine]:
    async with own_database("pool", migrate=False) as engine:
        yield engine


async def _backend(engine: AsyncEngine) -> tuple[int, Any]:
    """The server process behind the pool's connection, and the driver's connection."""
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        raw = await conn.get_raw_connection()
        return int(pid), raw.driver_connection


async def test_a_connection_the_server_closed_is_replaced_not_handed_out(
    admin: AsyncEngine,
) -> None:
    engine = make_engine(admin.url.render_as_string(hide_password=False), pool_size=1)
    try:
        pid, driver = await _backend(engine)
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        async def noticed() -> bool:
            return bool(driver.is_closed())

        await wait_for(noticed, timeout=10, interval=0.02, what="the driver to see the close")
        # Without the check this statement fails: the pool would hand out the dead one.
        again, _ = await _backend(engine)
        assert again != pid
    finally:
        await engine.dispose()


async def test_a_healthy_connection_is_reused(admin: AsyncEngine) -> None:
    engine = make_engine(admin.url.render_as_string(hide_password=False), pool_size=1)
    try:
        first, _ = await _backend(engine)
        second, _ = await _backend(engine)
        assert second == first
    finally:
        await engine.dispose()


async def test_reads_run_outside_a_transaction_and_leave_none_behind(admin: AsyncEngine) -> None:
    engine = make_engine(admin.url.render_as_string(hide_password=False), pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS kept (n int)"))
        async with reading(engine).connect() as conn:
            # No transaction around it (no BEGIN sent): a statement stands on its own.
            await conn.execute(text("INSERT INTO kept VALUES (1)"))
        # The same (only) connection, lent normally again: its writes wait for a commit.
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO kept VALUES (2)"))
            await conn.rollback()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT n FROM kept"))).scalars().all() == [1]
    finally:
        await engine.dispose()
