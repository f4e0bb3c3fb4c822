"""Training plans, transcripts and revoked certificates (from ``training.events.v1``).

Keyed by department and person, with no foreign key to ``users``: training may
arrive before the membership event and stays while the person is removed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _person() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "training_plans",
        *_person(),
        sa.Column("course_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=True),
        sa.Column("due_on", sa.Date, nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "training_completions",
        *_person(),
        sa.Column("certificate_id", sa.Text, primary_key=True),
        sa.Column("course_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("completed_on", sa.Date, nullable=False),
        sa.Column("hours", sa.Numeric, nullable=False),
        sa.Column("credits", sa.Numeric, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "training_revocations",
        *_person(),
        sa.Column("certificate_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("training_revocations")
    op.drop_table("training_completions")
    op.drop_table("training_plans")
