"""Fixtures several end-to-end modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from prodigy_users.stack.supervisor import Stack
from tests.e2e.users_table_support import Dataset, build
from tests.support import Api


@pytest.fixture(scope="session")
async def users_dataset(api: Api) -> Dataset:
    """The users table's two departments (``users_table_support.build``), made once per
    worker: the modules that use them (the table, its export, the console's table) only
    read them, and making them takes a quarter of a minute."""
    return await build(api)


@pytest.fixture
async def notifications_db(pair: Stack) -> AsyncIterator[AsyncEngine]:
    """An engine on the notifications database of the module's own ``pair`` stack
    (``notifications_support.notifications_pair``)."""
    engine = create_async_engine(pair.database_url("notifications"))
    yield engine
    await engine.dispose()
