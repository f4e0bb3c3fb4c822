"""``prodigy-users migrations new|check``: a service's next migration written by Alembic's
autogenerate, and the check that each service's models and migrations agree.

Both work on a throwaway embedded PostgreSQL (a new cluster in a temporary
directory, gone afterwards; no database of yours is touched): a fresh database is
migrated to head, then compared with the service's ``tables.metadata`` (and the
messaging tables, see ``runtime.migration_env``). So a new revision holds exactly
what the models have and the migrations do not yet build.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import SERVICES

if TYPE_CHECKING:
    from sqlalchemy import MetaData

# Alembic, SQLAlchemy and the services' tables are imported where they are used: the
# CLI builds its parser (and so imports this module) on every start, `serve` included.


class MigrationsError(Exception):
    """What ``prodigy-users migrations`` reports instead of a traceback."""


class NothingToChange(MigrationsError):
    """The models and the migrations agree: a new revision would be empty."""


def metadata_of(service: str) -> MetaData:
    """The one MetaData holding every table of ``service`` (``prodigy_users.<service>.tables``)."""
    if service not in SERVICES:
        raise MigrationsError(f"unknown service {service!r}; services: {', '.join(SERVICES)}")
    metadata: MetaData = importlib.import_module(f"prodigy_users.{service}.tables").metadata
    return metadata


async def migrated_database(
    server_url: str, service: str, script_location: Path | None = None
) -> str:
    """A new database on ``server_url``'s server, migrated to head; its URL."""
    from prodigy_users.runtime.db import alembic_config, ensure_database
    from prodigy_users.stack.postgres import database_url

    url = database_url(server_url, f"{service}_{uuid.uuid4().hex[:8]}")
    await ensure_database(url)
    config = alembic_config(service, url)
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))

    def upgrade() -> None:
        from alembic import command

        command.upgrade(config, "head")

    # Alembic's env runs an event loop of its own: a thread of its own too.
    await asyncio.to_thread(upgrade)
    return url


async def differences(service: str, url: str) -> list[Any]:
    """What autogenerate proposes for the database at ``url``: ``[]`` when it agrees with
    the service's models."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from prodigy_users.runtime import migration_env

    metadata = metadata_of(service)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found: list[Any] = await conn.run_sync(migration_env.differences, metadata)
            return found
    finally:
        await engine.dispose()


def next_revision_id(script_location: Path) -> str:
    """The next number of the naming scheme: ``0005`` after ``0004_imports.py``.

    Revision ids are the numbers themselves, so the id and the file name agree.
    """
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(script_location))
    ids = [rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()]
    odd = [i for i in ids if not i.isdigit()]
    if odd:
        raise MigrationsError(f"revision ids that are not numbers in {script_location}: {odd}")
    return f"{max((int(i) for i in ids), default=0) + 1:04d}"


def _tidy(path: Path) -> None:
    """Lint fixes (unused imports) and formatting as the repository has them, when ruff is
    installed (the test extra); the file is valid Python either way."""
    if importlib.util.find_spec("ruff") is None:
        return
    for args in (["check", "--fix", "--quiet", "--exit-zero"], ["format", "--quiet"]):
        subprocess.run([sys.executable, "-m", "ruff", *args, str(path)], check=False)


async def new_revision(
    server_url: str, service: str, message: str, script_location: Path | None = None
) -> Path:
    """Write the revision that brings ``service``'s migrations to its models; its path.

    Raises ``NothingToChange`` (and writes nothing) when they already agree.
    ``script_location``: another migrations directory than the service's (tests).
    """
    from alembic import command
    from alembic.script import Script

    from prodigy_users.runtime.db import alembic_config, migrations_dir

    metadata_of(service)  # refuses an unknown service before a server is touched
    location = script_location or migrations_dir(service)
    url = await migrated_database(server_url, service, script_location)
    config = alembic_config(service, url)
    config.set_main_option("script_location", str(location))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    empty: list[bool] = []

    def skip_if_empty(_context: Any, _revision: Any, directives: list[Any]) -> None:
        if directives[0].upgrade_ops.is_empty():
            directives[:] = []
            empty.append(True)

    def write() -> Any:
        return command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=next_revision_id(location),
            process_revision_directives=skip_if_empty,
        )

    written = await asyncio.to_thread(write)
    if empty or not isinstance(written, Script):
        raise NothingToChange(
            f"{service}: the models and the migrations agree; no revision written"
        )
    path = Path(written.path)
    _tidy(path)
    return path


# ---- the `migrations` subcommand ------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``prodigy-users migrations``."""
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new",
        help="write the next revision of SERVICE: what its models have and its migrations "
        "do not build yet (autogenerate against a throwaway PostgreSQL)",
    )
    new.add_argument("service", help=f"one of {', '.join(SERVICES)}")
    new.add_argument("-m", "--message", required=True, help="what the revision does")
    check = actions.add_parser(
        "check", help="report, for each service, whether its models and migrations agree"
    )
    check.add_argument("services", nargs="*", help="only these services (default: all)")


async def _new(service: str, message: str) -> Path:
    from prodigy_users.runtime.db import migrations_dir

    from .postgres import scratch_postgres

    metadata_of(service)
    # services/<service>/migrations in a clone; an installed package has no source to add to.
    if not (migrations_dir(service).parents[2] / "pyproject.toml").exists():
        raise MigrationsError(
            f"{migrations_dir(service)} is not in a source tree: run `migrations new` in a "
            "clone of the repository, installed with `pip install -e .`"
        )
    async with scratch_postgres(prefix="prodigy-migrations-") as pg:
        return await new_revision(pg.url, service, message)


async def _check(services: Sequence[str]) -> dict[str, list[Any]]:
    from .postgres import scratch_postgres

    for service in services:
        metadata_of(service)
    async with scratch_postgres(prefix="prodigy-migrations-") as pg:
        return {
            service: await differences(service, await migrated_database(pg.url, service))
            for service in services
        }


def run(args: argparse.Namespace) -> int:
    """Run ``prodigy-users migrations`` with parsed arguments; the exit code."""
    from alembic.util import CommandError

    try:
        if args.action == "new":
            path = asyncio.run(_new(args.service, args.message))
            print(path)
            print(
                "Review it (the upgrade and the downgrade), then run the stairway test: "
                "pytest tests/integration/test_migrations.py"
            )
            return 0
        found = asyncio.run(_check(args.services or SERVICES))
    except (MigrationsError, CommandError) as exc:
        print(f"prodigy-users migrations: {exc}", file=sys.stderr)
        return 1
    for service, diff in found.items():
        if diff:
            print(f"{service}: the models and the migrations differ:")
            for item in diff:
                print(f"  {item}")
        else:
            print(f"{service}: the models and the migrations agree")
    return 1 if any(found.values()) else 0
