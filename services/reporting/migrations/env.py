"""Alembic environment for reporting."""

from prodigy_users.reporting.tables import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
