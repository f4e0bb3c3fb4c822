"""How many current members each department has per role and status (``user_counts``),
kept by the projection; counted once here from the rows already projected.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_counts",
        sa.Column("department_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("department_id", "role", "status"),
    )
    # The read model so far: from here on the projection moves the counts with the rows.
    op.execute(
        "INSERT INTO user_counts (department_id, role, status, members) "
        "SELECT department_id, role, status, count(*) FROM users "
        "WHERE removed_at IS NULL GROUP BY department_id, role, status"
    )


def downgrade() -> None:
    op.drop_table("user_counts")
