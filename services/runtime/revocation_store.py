"""Access-token cut-offs: one small table in each verifying service's own database.

Identity writes a cut-off in the transaction that sets a password (or signs someone
out everywhere) and announces it (``TokensRevoked`` on ``identity.revocations.v1``);
the other services record it through their consumers (``record``). The verifier asks
``CutOffs.revoked`` once per authenticated request; its answers are kept in memory
while the process hears every new cut-off (``NOTIFY token_cutoffs``, sent by the
transaction that writes one), so a signed-in person's requests usually cost no trip
to the database for it.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import TokensRevoked

from .db import listen, notify, reading
from .revocation_rules import revoked
from .uow import UnitOfWork

metadata = sa.MetaData()

CHANNEL = "token_cutoffs"
# Accounts whose cut-off (or lack of one) a process keeps: the people signed in lately.
CACHED_ACCOUNTS = 50_000

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
    """Keep the later of the account's cut-off and ``not_before`` (order-proof), and tell
    every process of the service once the transaction commits (``CutOffs`` forgets what
    it held for the account)."""
    stmt = pg_insert(token_cutoffs).values(account_id=account_id, not_before=not_before)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[token_cutoffs.c.account_id],
            set_={"not_before": sa.func.greatest(token_cutoffs.c.not_before, not_before)},
        )
    )
    await notify(conn, CHANNEL, str(account_id))


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
    """The verifier's question, on the service's engine (``app.state.cutoffs``).

    Answers are kept per account only while ``listen`` hears the channel: a new cut-off
    drops the account's kept answer when its transaction commits, in every process. An
    answer read from the database while a cut-off was being announced is not kept
    (``_heard`` moved on), and losing the listening session forgets everything and
    asks the database again until it listens anew.
    """

    def __init__(self, engine: AsyncEngine, capacity: int = CACHED_ACCOUNTS) -> None:
        self._engine = engine
        self._capacity = capacity
        self._kept: OrderedDict[uuid.UUID, datetime | None] = OrderedDict()
        self._listening = False
        self._heard = 0  # announcements heard (and sessions begun or lost)

    async def revoked(self, account_id: uuid.UUID, issued_at: float | None) -> bool:
        """True if the account's tokens issued at ``issued_at`` are no longer accepted."""
        if account_id in self._kept:
            self._kept.move_to_end(account_id)
            return revoked(issued_at, self._kept[account_id])
        heard = self._heard
        async with reading(self._engine).connect() as conn:
            cut = await not_before(conn, account_id)
        if self._listening and heard == self._heard:
            self._kept[account_id] = cut
            if len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
        return revoked(issued_at, cut)

    @property
    def is_listening(self) -> bool:
        """Whether answers are being kept (the channel is heard)."""
        return self._listening

    def heard(self, payload: str) -> None:
        """A cut-off was written for the account named in ``payload``."""
        self._heard += 1
        try:
            self._kept.pop(uuid.UUID(payload), None)
        except ValueError:
            self._kept.clear()  # not an account id: trust nothing kept

    def listening(self, now: bool) -> None:
        """The listening session began (``True``) or was lost: either way, what is kept
        may have missed an announcement."""
        self._heard += 1
        self._kept.clear()
        self._listening = now

    async def listen(self) -> NoReturn:
        """Hear every new cut-off for the life of the service."""
        await listen(
            self._engine,
            CHANNEL,
            self.heard,
            what="listening for token cut-offs",
            on_listening=self.listening,
        )
