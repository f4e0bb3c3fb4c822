"""Throttling: the runtime's table of attempt counts (accepting invitations, joining).

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12
"""

from collections.abc import Sequence

from prodigy_users.runtime.throttle_store import create_throttle_counts, drop_throttle_counts

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_throttle_counts()


def downgrade() -> None:
    drop_throttle_counts()
