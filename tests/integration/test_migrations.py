"""Migration stairway: every revision of every service upgrades, downgrades and upgrades again
on a real PostgreSQL, and the models match what the migrations build."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.runtime.db import alembic_config, downgrade, ensure_database, upgrade
from prodigy_users.runtime.messaging_tables import metadata as messaging_metadata

SERVICES = ("identity", "membership", "notifications", "reporting")


@pytest.fixture(scope="module")
def server_url(stack: Any) -> str:
    if stack is None:
        pytest.skip(
            "PRODIGY_TEST_TARGET=external: no database server to create scratch databases in"
        )
    url: str = stack.service_env("identity")["PRODIGY_DATABASE_URL"]
    return url


def _service_metadata(service: str) -> sa.MetaData:
    package = importlib.import_module(f"prodigy_users.{service}")
    names = {module.name for module in pkgutil.iter_modules(package.__path__)}
    if "tables" in names:  # every table of the service, in one MetaData
        tables: sa.MetaData = importlib.import_module(f"prodigy_users.{service}.tables").metadata
        return tables
    # Tables may be spread over store.py and store_<topic>.py; all share one MetaData.
    for name in names:
        if name.startswith("store"):
            importlib.import_module(f"prodigy_users.{service}.{name}")
    store: sa.MetaData = importlib.import_module(f"prodigy_users.{service}.store").metadata
    return store


def _combined(service: str) -> sa.MetaData:
    combined = sa.MetaData()
    for table in (
        *_service_metadata(service).tables.values(),
        *messaging_metadata.tables.values(),
    ):
        table.to_metadata(combined)
    return combined


async def _diff(url: str, service: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), _combined(service))
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_stairway_and_models_match(server_url: str, service: str) -> None:
    url = make_url(server_url).set(database=f"stairway_{service}_{uuid.uuid4().hex[:8]}")
    db = url.render_as_string(hide_password=False)
    await ensure_database(db)
    revisions = list(ScriptDirectory.from_config(alembic_config(service, db)).walk_revisions())
    assert revisions, f"{service} has no migrations"
    for revision in reversed(revisions):
        await asyncio.to_thread(upgrade, service, db, revision.revision)
        down = revision.down_revision
        await asyncio.to_thread(downgrade, service, db, down if isinstance(down, str) else "base")
        await asyncio.to_thread(upgrade, service, db, revision.revision)

    differences = await _diff(db, service)
    assert differences == [], f"{service}: models and migrations differ: {differences}"
