"""The name pasted with an invited address ("Sam Two <sam@x.org>")

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 07:53:51.815246
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invitations", sa.Column("name", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("invitations", "name")
