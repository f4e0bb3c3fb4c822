"""merged accounts: an account an operator merged into another holds no login email

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 14:03:29.112858
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "accounts_merged_into_fkey"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("merged_into", sa.UUID(), nullable=True))
    op.add_column("accounts", sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("accounts", "email_normalised", existing_type=sa.TEXT(), nullable=True)
    op.create_foreign_key(FK, "accounts", "accounts", ["merged_into"], ["id"])


def downgrade() -> None:
    op.drop_constraint(FK, "accounts", type_="foreignkey")
    # A merged account gets its own address back as its key (the kept account holds it
    # as a linked address: the two tables are apart, so nothing collides).
    op.execute("UPDATE accounts SET email_normalised = lower(email) WHERE email_normalised IS NULL")
    op.alter_column("accounts", "email_normalised", existing_type=sa.TEXT(), nullable=False)
    op.drop_column("accounts", "merged_at")
    op.drop_column("accounts", "merged_into")
