"""Accounts' latest names and login emails (identity's ``AccountUpdated``), laid over
their users-table rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_names",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("sort_name", sa.Text(collation="C"), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("name_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("account_names")
