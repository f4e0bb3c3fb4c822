"""Email confirmation: accounts made by registering stay unconfirmed until the owner of
the address uses the emailed link; confirmation tokens say which request they complete.

Every account that exists already is confirmed (an admin or an invitation vouched
for its address, or it registered before confirmation existed).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE accounts SET email_confirmed_at = created_at")
    op.create_index(
        "ix_accounts_unconfirmed",
        "accounts",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("email_confirmed_at IS NULL"),
    )
    op.add_column("credential_tokens", sa.Column("request_id", sa.UUID(), nullable=True))
    op.add_column("credential_tokens", sa.Column("department_id", sa.UUID(), nullable=True))


def downgrade() -> None:
    # Without the column an unconfirmed account could sign in: they are reservations
    # nobody outside identity has heard of, so they go (with their tokens).
    unconfirmed = "SELECT id FROM accounts WHERE email_confirmed_at IS NULL"
    op.execute(f"DELETE FROM credential_tokens WHERE account_id IN ({unconfirmed})")  # noqa: S608
    op.execute("DELETE FROM accounts WHERE email_confirmed_at IS NULL")
    op.drop_column("credential_tokens", "department_id")
    op.drop_column("credential_tokens", "request_id")
    op.drop_index(
        "ix_accounts_unconfirmed",
        table_name="accounts",
        postgresql_where=sa.text("email_confirmed_at IS NULL"),
    )
    op.drop_column("accounts", "email_confirmed_at")
