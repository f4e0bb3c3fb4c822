"""Each email in ``sending`` names the delivery worker that claimed it, so a worker
that died is seen at once (its session lock is gone) and its leases taken over.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("emails", sa.Column("lease_holder", sa.Integer(), nullable=True))
    op.create_index(
        "emails_sending",
        "emails",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "emails_sending", table_name="emails", postgresql_where=sa.text("status = 'sending'")
    )
    op.drop_column("emails", "lease_holder")
