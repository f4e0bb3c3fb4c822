"""Access-token cut-offs: the verifier refuses an account's tokens issued before its cut-off
(kept from identity's ``TokensRevoked``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from prodigy_users.runtime.revocation_store import create_token_cutoffs, drop_token_cutoffs

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_token_cutoffs()


def downgrade() -> None:
    drop_token_cutoffs()
