"""A person's rows in every department, found by account (GET /v1/me/record).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:43:25.608326
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("users_by_account", "users", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index("users_by_account", table_name="users")
