"""Alembic environment for membership."""

from prodigy_users.membership.store import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
