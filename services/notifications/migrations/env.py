"""Alembic environment for notifications."""

from prodigy_users.notifications.tables import metadata
from prodigy_users.runtime.migration_env import run

run(metadata)
