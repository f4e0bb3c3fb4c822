"""Invitations in the activity log: a row may name an address instead of an account

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 17:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("activity", "subject_id", nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM activity WHERE subject_id IS NULL")
    op.alter_column("activity", "subject_id", nullable=False)
