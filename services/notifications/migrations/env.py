"""Alembic environment for notifications."""

from prodigy_users.notifications.store import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
