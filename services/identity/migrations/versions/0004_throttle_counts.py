"""Throttling: the runtime's table of attempt counts (sign-in, set-password, reset requests).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from prodigy_users.runtime.throttle_store import create_throttle_counts, drop_throttle_counts

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_throttle_counts()


def downgrade() -> None:
    drop_throttle_counts()
