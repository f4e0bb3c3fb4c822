"""Fixtures several end-to-end modules share."""

from __future__ import annotations

import pytest

from tests.e2e.users_table_support import Dataset, build
from tests.support import Api


@pytest.fixture(scope="session")
async def users_dataset(api: Api) -> Dataset:
    """The users table's two departments (``users_table_support.build``), made once per
    worker: the modules that use them (the table, its export, the console's table) only
    read them, and making them takes a quarter of a minute."""
    return await build(api)
