"""Indexes for the users table's sorts (a keyset per column) and its search (trigrams).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPLOYEE_ID = "lower(coalesce(employee_id, ''))"
_ROLE_RANK = "coalesce(array_position('{admin,officer,member}'::text[], role), 4)"
_SEARCH = (
    "((((sort_name || chr(31)) || lower(email)) || chr(31)) || lower(coalesce(employee_id, '')))"
)

# name -> key columns after department_id and before account_id
_SORTS: dict[str, list[str]] = {
    "users_by_email": ["lower(email)"],
    "users_by_role": [_ROLE_RANK, "sort_name"],
    "users_by_status": ["status", "sort_name"],
    "users_by_employee_id": ["(employee_id IS NULL)", _EMPLOYEE_ID],
    "users_by_employee_id_desc": ["(employee_id IS NOT NULL)", _EMPLOYEE_ID],
    "users_by_joined_at": ["joined_at"],
    "users_by_updated_at": ["updated_at"],
}


def upgrade() -> None:
    # pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database
    # owner may create it. Its operator class is named with its schema, so the index
    # can also be built while the search path holds only a rebuilt read model's schema.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    trgm_schema = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT quote_ident(n.nspname) FROM pg_extension e"
                " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            )
        )
        .scalar_one()
    )
    for name, keys in _SORTS.items():
        op.create_index(name, "users", ["department_id", *(sa.text(k) for k in keys), "account_id"])
    op.execute(
        f"CREATE INDEX users_search ON users USING gin ({_SEARCH} {trgm_schema}.gin_trgm_ops)"
    )


def downgrade() -> None:
    op.drop_index("users_search", table_name="users")
    for name in reversed(_SORTS):
        op.drop_index(name, table_name="users")
    # pg_trgm stays: other schemas of this database (a rebuilt read model) may use it.
