"""An index for the cap on "someone tried to register with your address" emails

Every refused registration counts the address's recent refusals; without an index that
read the whole operations table, which holds every request ever made.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_operations_failed_registrations",
        "operations",
        [sa.text("lower(request ->> 'email')"), "completed_at"],
        postgresql_where=sa.text("kind = 'register' AND status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_operations_failed_registrations", table_name="operations")
