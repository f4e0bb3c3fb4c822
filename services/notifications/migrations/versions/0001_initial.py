"""Departments, memberships, the email queue and log, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from prodigy_users.runtime.messaging_tables import (
    create_messaging_tables,
    drop_messaging_tables,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "memberships",
        sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "emails",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("source_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("department_id", UUID(as_uuid=True), nullable=True),
        sa.Column("account_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sealed_token", sa.Text, nullable=True),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correlation_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("source_event_id", "template", name="emails_source_template"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'retrying', 'sent', 'failed')", name="emails_status"
        ),
    )
    op.create_index(
        "emails_due",
        "emails",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'retrying', 'sending')"),
    )
    op.create_index("emails_department", "emails", ["department_id", sa.text("created_at DESC")])
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_index("emails_department", table_name="emails")
    op.drop_index("emails_due", table_name="emails")
    op.drop_table("emails")
    op.drop_table("memberships")
    op.drop_table("departments")
