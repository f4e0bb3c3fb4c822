"""What reporting's integration tests share: a database of their own per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.databases import own_database


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A migrated reporting database on a PostgreSQL of its own (one per module)."""
    async with own_database("reporting") as eng:
        yield eng
