"""Who asked for an operation or import, told apart: an operator, or nobody signed in.

Operators' tokens used to name the nil UUID, the same value that marked a
registration (nobody signed in, the operation's id is its key): an operation an
operator started could then be read without a token. Operators now have a subject
of their own, and a registration's requester is NULL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NIL = "00000000-0000-0000-0000-000000000000"
# prodigy_users.runtime.auth.OPERATOR_SUBJECT (a literal: migrations do not change
# when the code does).
OPERATOR = "00000000-0000-0000-0000-00000000000f"


def _move(name: str, old: str | None, new: str | None) -> None:
    """Set ``requested_by`` from ``old`` to ``new`` (None: NULL) in table ``name``."""
    table = sa.table(name, sa.column("requested_by", UUID(as_uuid=False)))
    column = table.c.requested_by
    op.execute(
        sa.update(table)
        .where(column.is_(None) if old is None else column == old)
        .values(requested_by=new)
    )


def upgrade() -> None:
    op.alter_column("operations", "requested_by", nullable=True)
    op.execute("UPDATE operations SET requested_by = NULL WHERE kind = 'register'")
    _move("operations", NIL, OPERATOR)
    _move("imports", NIL, OPERATOR)


def downgrade() -> None:
    _move("imports", OPERATOR, NIL)
    _move("operations", OPERATOR, NIL)
    _move("operations", None, NIL)
    op.alter_column("operations", "requested_by", nullable=False)
