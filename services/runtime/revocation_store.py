"""Access-token cut-offs: one small table in each verifying service's own database.

Identity writes a cut-off in the transaction that sets a password (or signs someone
out everywhere) and announces it (``TokensRevoked`` on ``identity.revocations.v1``);
the other services record it through their consumers (``record``). The verifier asks
``CutOffs.revoked`` once per authenticated request: one primary-key lookup.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import TokensRevoked

from .revocation_rules import revoked
from .uow import UnitOfWork

metadata = sa.MetaData()

token_cutoffs = sa.Table(
    "token_cutoffs",
    metadata,
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    # The account's access tokens issued (``iat``) before this are refused.
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
)


def create_token_cutoffs() -> None:
    """Alembic operation: create the table (in a service that verifies tokens)."""
    metadata.create_all(op.get_bind())


def drop_token_cutoffs() -> None:
    """Alembic operation: drop it again."""
    metadata.drop_all(op.get_bind())


async def cut_off(conn: AsyncConnection, account_id: uuid.UUID, not_before: datetime) -> None:
    """Keep the later of the account's cut-off and ``not_before`` (order-proof)."""
    stmt = pg_insert(token_cutoffs).values(account_id=account_id, not_before=not_before)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[token_cutoffs.c.account_id],
            set_={"not_before": sa.func.greatest(token_cutoffs.c.not_before, not_before)},
        )
    )


async def not_before(conn: AsyncConnection, account_id: uuid.UUID) -> datetime | None:
    """The account's cut-off, if it has one."""
    value: Any = await conn.scalar(
        sa.select(token_cutoffs.c.not_before).where(token_cutoffs.c.account_id == account_id)
    )
    return value if isinstance(value, datetime) else None


async def record(uow: UnitOfWork, env: RawEnvelope, event: TokensRevoked) -> None:
    """Consumer handler for ``TokensRevoked``: keep the account's cut-off."""
    await cut_off(uow.conn, event.account_id, event.not_before)


class CutOffs:
    """The verifier's question, on the service's engine (``app.state.cutoffs``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def revoked(self, account_id: uuid.UUID, issued_at: float | None) -> bool:
        """True if the account's tokens issued at ``issued_at`` are no longer accepted."""
        async with self._engine.connect() as conn:
            return revoked(issued_at, await not_before(conn, account_id))
