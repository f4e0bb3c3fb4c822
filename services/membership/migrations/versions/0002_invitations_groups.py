"""Accounts projection, invitations, registration links, groups, employee-ID uniqueness.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("departments", sa.Column("invitation_ttl_s", sa.Integer, nullable=True))
    op.add_column("memberships", sa.Column("invited_email", sa.Text, nullable=True))
    op.create_index(
        "ux_memberships_employee_id",
        "memberships",
        ["department_id", "employee_id"],
        unique=True,
        postgresql_where=sa.text("employee_id IS NOT NULL"),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("email_normalised", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
    )
    op.create_index("ix_accounts_email_normalised", "accounts", ["email_normalised"])
    op.create_table(
        "invitations",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False
        ),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("email_normalised", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("invited_by", UUID(as_uuid=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("account_id", UUID(as_uuid=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ux_invitations_pending",
        "invitations",
        ["department_id", "email_normalised"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_invitations_department", "invitations", ["department_id", "created_at"])
    op.create_table(
        "registration_links",
        sa.Column(
            "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), primary_key=True
        ),
        sa.Column("link_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("allowed_domains", ARRAY(sa.Text), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_normalised", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("department_id", "name_normalised", name="ux_groups_name"),
    )
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            UUID(as_uuid=True),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("department_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_group_members_account", "group_members", ["department_id", "account_id"])


def downgrade() -> None:
    op.drop_table("group_members")
    op.drop_table("groups")
    op.drop_table("registration_links")
    op.drop_table("invitations")
    op.drop_table("accounts")
    op.drop_index("ux_memberships_employee_id", table_name="memberships")
    op.drop_column("memberships", "invited_email")
    op.drop_column("departments", "invitation_ttl_s")
