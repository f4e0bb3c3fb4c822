"""merged accounts: training events naming a merged account count for the kept one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 14:08:40.464337
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merged_accounts",
        sa.Column("merged_account_id", sa.UUID(), nullable=False),
        sa.Column("kept_account_id", sa.UUID(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merged_account_id"),
    )


def downgrade() -> None:
    op.drop_table("merged_accounts")
