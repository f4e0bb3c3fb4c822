"""Every service's migrations on a real PostgreSQL: a fresh database migrated to head holds
exactly what its models (``tables.metadata``) say, and every revision upgrades,
downgrades and upgrades again (the stairway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic.script import ScriptDirectory

from prodigy_users.runtime.db import alembic_config, downgrade, ensure_database, upgrade
from prodigy_users.stack import SERVICES
from prodigy_users.stack.postgres import database_url, scratch_postgres
from prodigy_users.stack.revisions import differences, metadata_of, migrated_database


@pytest.fixture(scope="module")
async def server_url() -> AsyncIterator[str]:
    async with scratch_postgres(prefix="migrations-it-") as pg:
        yield pg.url


@pytest.mark.parametrize("service", SERVICES)
async def test_a_fresh_database_at_head_is_what_the_models_say(
    server_url: str, service: str
) -> None:
    # What `prodigy-users migrations new` would write: nothing. A difference here is
    # a model the migrations do not build (write the revision), or a model that says
    # less than the database has (fix the model: the migrations are what runs).
    url = await migrated_database(server_url, service)
    assert metadata_of(service).tables, f"{service}.tables declares no table"
    found = await differences(service, url)
    assert found == [], f"{service}: models and migrations differ: {found}"


@pytest.mark.parametrize("service", SERVICES)
async def test_stairway(server_url: str, service: str) -> None:
    db = database_url(server_url, f"stairway_{service}")
    await ensure_database(db)
    revisions = list(ScriptDirectory.from_config(alembic_config(service, db)).walk_revisions())
    assert revisions, f"{service} has no migrations"
    for revision in reversed(revisions):
        await asyncio.to_thread(upgrade, service, db, revision.revision)
        down = revision.down_revision
        await asyncio.to_thread(downgrade, service, db, down if isinstance(down, str) else "base")
        await asyncio.to_thread(upgrade, service, db, revision.revision)
    assert (await differences(service, db)) == [], f"{service}: the stairway left a difference"


async def test_a_database_behind_the_models_is_told_apart(server_url: str) -> None:
    # Identity's first revision only: the outbox's trace headers (0002) and the
    # throttling counts (0003) are missing.
    db = database_url(server_url, "behind_identity")
    await ensure_database(db)
    await asyncio.to_thread(upgrade, "identity", db, "0001")
    found = await differences("identity", db)
    named = sorted((op[0], getattr(op[-1], "name", None)) for op in found)
    assert named == [
        ("add_column", "headers"),
        ("add_index", "ix_throttle_counts_forget_at"),
        ("add_table", "throttle_counts"),
    ], found
