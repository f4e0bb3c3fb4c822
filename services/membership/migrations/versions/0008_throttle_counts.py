"""Throttling: the runtime's table of attempt counts (accepting invitations, joining).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from prodigy_users.runtime.throttle_store import create_throttle_counts, drop_throttle_counts

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_throttle_counts()


def downgrade() -> None:
    drop_throttle_counts()
