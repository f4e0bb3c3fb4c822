"""Alembic environment for reporting."""

from prodigy_users.reporting.store import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
