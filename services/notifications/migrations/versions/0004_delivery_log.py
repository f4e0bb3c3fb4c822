"""The delivery log shows when each email was last tried, and pages by (created_at, id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("emails", sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "emails_department_log",
        "emails",
        ["department_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.drop_index("emails_department", table_name="emails")


def downgrade() -> None:
    op.create_index("emails_department", "emails", ["department_id", sa.text("created_at DESC")])
    op.drop_index("emails_department_log", table_name="emails")
    op.drop_column("emails", "last_attempt_at")
