"""Email-change tokens: the address a person asked to make their login email, kept with
the hash of the link sent there until it is used.

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
    op.add_column("credential_tokens", sa.Column("new_email", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("credential_tokens", "new_email")
