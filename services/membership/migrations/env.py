"""Alembic environment for membership."""

from prodigy_users.membership.tables import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
