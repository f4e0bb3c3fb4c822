"""``prodigy-users migrations new|check`` against throwaway embedded PostgreSQL servers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from prodigy_users.runtime.db import alembic_config, asyncpg_dsn, migrations_dir
from prodigy_users.stack import SERVICES
from prodigy_users.stack.cli import main as cli_main
from prodigy_users.stack.postgres import scratch_postgres
from prodigy_users.stack.revisions import (
    NothingToChange,
    migrated_database,
    new_revision,
    next_revision_id,
)

# Identity's migrations, with a models side that has one column more than they build.
ENV_WITH_A_NEW_COLUMN = '''"""Identity's migrations; its models have one column more (tests)."""

import sqlalchemy as sa

from prodigy_users.identity.tables import metadata
from prodigy_users.runtime.migration_env import run

wanted = sa.MetaData()
for table in metadata.tables.values():
    table.to_metadata(wanted)
wanted.tables["accounts"].append_column(sa.Column("nickname", sa.Text, nullable=True))
run(wanted)
'''


def _versions(service: str) -> list[str]:
    return sorted(p.name for p in (migrations_dir(service) / "versions").glob("*.py"))


def test_an_unknown_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["migrations", "new", "billing", "-m", "add invoices"]) == 1
    assert "unknown service 'billing'" in capsys.readouterr().err
    assert cli_main(["migrations", "check", "identity", "billing"]) == 1
    assert "unknown service 'billing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a revision without a message is not written
        cli_main(["migrations", "new", "identity"])


def test_new_on_an_up_to_date_service_writes_nothing_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _versions("notifications")
    assert cli_main(["migrations", "new", "notifications", "-m", "nothing to do"]) == 1
    out = capsys.readouterr()
    assert "notifications: the models and the migrations agree; no revision written" in out.err
    assert out.out == ""
    assert _versions("notifications") == before


def test_check_in_a_fresh_interpreter_finds_every_service_in_agreement() -> None:
    # A fresh process sees only the tables its service's `tables` module imports: one
    # this test process has imported by other paths cannot hide a forgotten module.
    done = subprocess.run(
        [sys.executable, "-m", "prodigy_users.stack.cli", "migrations", "check"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{service}: the models and the migrations agree" for service in SERVICES
    ]


async def test_new_writes_the_next_revision_with_exactly_what_the_models_add(
    tmp_path: Path,
) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(
        migrations_dir("identity"), location, ignore=shutil.ignore_patterns("__pycache__")
    )
    (location / "env.py").write_text(ENV_WITH_A_NEW_COLUMN)
    last = next_revision_id(location)
    assert last == f"{len(_versions('identity')):04d}"  # versions/ holds __init__.py too

    async with scratch_postgres(prefix="migrations-new-") as pg:
        path = await new_revision(pg.url, "identity", "Add a nickname", script_location=location)

        assert path == location / "versions" / f"{last}_add_a_nickname.py"
        text = path.read_text()
        assert f'revision: str = "{last}"' in text
        assert f'down_revision: str | None = "{int(last) - 1:04d}"' in text
        assert 'op.add_column("accounts", sa.Column("nickname", sa.Text(), nullable=True))' in text
        assert 'op.drop_column("accounts", "nickname")' in text
        # Nothing else: the rest of the models agree with the migrations.
        assert text.count("op.") == 2, text
        compile(text, str(path), "exec")

        # The revision runs: up to it (a fresh database), down again, and it is what
        # the models wanted, so the next `new` has nothing left to write.
        url = await migrated_database(pg.url, "identity", location)
        assert "nickname" in await _columns(url, "accounts")
        config = alembic_config("identity", url)
        config.set_main_option("script_location", str(location))
        await asyncio.to_thread(command.downgrade, config, f"{int(last) - 1:04d}")
        assert "nickname" not in await _columns(url, "accounts")
        with pytest.raises(NothingToChange):
            await new_revision(pg.url, "identity", "Again", script_location=location)
        assert sorted(p.name for p in (location / "versions").glob("*.py")) == sorted(
            [*_versions("identity"), path.name]
        )


async def _columns(url: str, table: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
        )
        return {r["column_name"] for r in rows}
    finally:
        await conn.close()
