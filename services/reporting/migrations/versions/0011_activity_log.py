"""A department's activity log: one row per change to a person, with who made it.

Filled by the projection from here on; past changes come in with a replay of the read
model (``prodigy-users replay reporting``), which folds every event again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:49:30.076059
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("department_id", sa.UUID(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "activity_by_department",
        "activity",
        ["department_id", "occurred_at", "event_id"],
        unique=False,
    )
    op.create_index(
        "activity_by_person",
        "activity",
        ["department_id", "subject_id", "occurred_at", "event_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("activity_by_person", table_name="activity")
    op.drop_index("activity_by_department", table_name="activity")
    op.drop_table("activity")
