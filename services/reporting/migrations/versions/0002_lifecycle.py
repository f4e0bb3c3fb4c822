"""The member lifecycle: removed rows kept hidden, group ids with a groups table, history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    # Groups were never filled before this revision (no group events existed), so
    # every value is '{}' and the cast cannot fail.
    op.alter_column("users", "groups", server_default=None)
    op.alter_column(
        "users",
        "groups",
        type_=ARRAY(UUID(as_uuid=True)),
        postgresql_using="groups::uuid[]",
    )
    op.alter_column("users", "groups", server_default=sa.text("'{}'::uuid[]"))
    op.create_table(
        "groups",
        sa.Column("group_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("department_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_groups_department_id", "groups", ["department_id"])
    op.create_table(
        "member_history",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("department_id", UUID(as_uuid=True), nullable=False),
        sa.Column("account_id", UUID(as_uuid=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index(
        "member_history_by_member",
        "member_history",
        ["department_id", "account_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index("member_history_by_member", table_name="member_history")
    op.drop_table("member_history")
    op.drop_index("ix_groups_department_id", table_name="groups")
    op.drop_table("groups")
    op.alter_column("users", "groups", server_default=None)
    op.alter_column("users", "groups", type_=ARRAY(sa.Text), postgresql_using="groups::text[]")
    op.alter_column("users", "groups", server_default=sa.text("'{}'::text[]"))
    op.drop_column("users", "removed_at")
