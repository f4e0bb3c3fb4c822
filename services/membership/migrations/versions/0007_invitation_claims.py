"""Invitations can be claimed by the registration using them, so that concurrent
registrations through one invitation cannot each make an account.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invitations", sa.Column("claimed_by", sa.UUID(), nullable=True))


def downgrade() -> None:
    op.drop_column("invitations", "claimed_by")
