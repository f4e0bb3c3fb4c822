"""Bulk imports and their per-row outcomes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False
        ),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("file_name", sa.Text, nullable=True),
        sa.Column("file_type", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("headers", ARRAY(sa.Text), nullable=False),
        sa.Column("columns", JSONB, nullable=False),
        sa.Column("total_rows", sa.Integer, nullable=False),
        sa.Column("groups_ready", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("counts", JSONB, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_imports_department", "imports", ["department_id", "created_at"])
    op.create_index(
        "ix_imports_running",
        "imports",
        ["created_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "import_rows",
        sa.Column(
            "import_id",
            UUID(as_uuid=True),
            sa.ForeignKey("imports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("cells", ARRAY(sa.Text), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("email_normalised", sa.Text, nullable=True),
        sa.Column("role", sa.Text, nullable=True),
        sa.Column("employee_id", sa.Text, nullable=True),
        sa.Column("groups", ARRAY(sa.Text), nullable=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("batch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("account_id", UUID(as_uuid=True), nullable=True),
        sa.Column("changes", JSONB, nullable=True),
    )
    op.create_index(
        "ix_import_rows_open",
        "import_rows",
        ["import_id", "state"],
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.create_index(
        "ix_import_rows_batch",
        "import_rows",
        ["batch_id"],
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("import_rows")
    op.drop_table("imports")
