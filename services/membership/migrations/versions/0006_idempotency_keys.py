"""Idempotency-Key: the runtime's table of answers, and the key on the work a request
starts (operations waiting for identity, imports), so a retry finds that work.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from prodigy_users.runtime.idempotency_store import (
    create_idempotency_keys,
    drop_idempotency_keys,
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys()
    for table in ("operations", "imports"):
        op.add_column(table, sa.Column("idempotency_key", sa.Text, nullable=True))
        op.create_index(f"ux_{table}_idempotency_key", table, ["idempotency_key"], unique=True)


def downgrade() -> None:
    for table in ("imports", "operations"):
        op.drop_index(f"ux_{table}_idempotency_key", table_name=table)
        op.drop_column(table, "idempotency_key")
    drop_idempotency_keys()
