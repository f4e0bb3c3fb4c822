"""Alembic environment for identity."""

from prodigy_users.identity.tables import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
