"""Which rebuild of the read model is live (written by ``prodigy-users replay reporting``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "read_model",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Text, nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("read_model")
