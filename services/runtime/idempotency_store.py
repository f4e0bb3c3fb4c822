"""Where idempotency keys are kept: one table in the service's database, and its queries.

A key is claimed atomically (insert, or lock the row that holds it), held by one
request at a time under a lease that the running request renews, and then either
completed with the answer or released (the server failed; a retry runs again).
Each claim gets an ``owner`` id, so a request that lost its key (a takeover after
its lease ran out) cannot overwrite the answer of the one that took it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .idempotency_rules import KEY_TTL, LEASE, Held, Verdict, decide, expired

metadata = sa.MetaData()

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # Who sent the key (an account id, or "anonymous"), and the key.
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    # in_progress -> done (the answer below is the one to repeat).
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("owner", UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("headers", JSONB, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_idempotency_keys_created", idempotency_keys.c.created_at)


def create_idempotency_keys() -> None:
    """Alembic operation: create the table (in a service that takes idempotency keys)."""
    metadata.create_all(op.get_bind())


def drop_idempotency_keys() -> None:
    """Alembic operation: drop it again."""
    metadata.drop_all(op.get_bind())


@dataclass(frozen=True)
class Claim:
    """What claiming a key gave: ``run`` (with the ``owner`` to finish it as), or the
    verdict on an earlier request (with its answer, for ``replay``)."""

    verdict: Verdict
    owner: uuid.UUID | None = None
    # ``run`` on a key whose earlier holder died (its lease ran out) or that expired.
    resumed: bool = False
    status: int | None = None
    headers: list[list[str]] | None = None
    body: bytes | None = None


class KeyStore:
    """The ``idempotency_keys`` table of one service's database."""

    def __init__(
        self, engine: AsyncEngine, *, lease: timedelta = LEASE, ttl: timedelta = KEY_TTL
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.ttl = ttl

    def _row(self, scope: str, key: str) -> Any:
        t = idempotency_keys.c
        return sa.and_(t.scope == scope, t.key == key)

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        """Take the key for a request with this fingerprint, or say why not."""
        owner = uuid.uuid4()
        until = sa.func.now() + self.lease
        # A row purged between the insert and the lock: insert again (at most twice).
        for _ in range(3):
            async with self.engine.begin() as conn:
                inserted = await conn.execute(
                    pg_insert(idempotency_keys)
                    .values(
                        scope=scope,
                        key=key,
                        fingerprint=fingerprint,
                        state="in_progress",
                        owner=owner,
                        locked_until=until,
                    )
                    .on_conflict_do_nothing()
                    .returning(idempotency_keys.c.owner)
                )
                if inserted.first() is not None:
                    return Claim("run", owner)
                row = (
                    await conn.execute(
                        sa.select(idempotency_keys, sa.func.now().label("now"))
                        .where(self._row(scope, key))
                        .with_for_update()
                    )
                ).first()
                if row is None:
                    continue
                held = Held(row.state, row.fingerprint, row.created_at, row.locked_until)
                verdict = decide(held, fingerprint, row.now, self.ttl)
                if verdict != "run":
                    return Claim(verdict, status=row.status, headers=row.headers, body=row.body)
                forgotten = expired(held, row.now, self.ttl)
                await conn.execute(
                    sa.update(idempotency_keys)
                    .where(self._row(scope, key))
                    .values(
                        fingerprint=fingerprint,
                        state="in_progress",
                        owner=owner,
                        status=None,
                        headers=None,
                        body=None,
                        locked_until=until,
                        # A forgotten key starts a new day; a takeover keeps the first's.
                        created_at=sa.func.now() if forgotten else idempotency_keys.c.created_at,
                    )
                )
                return Claim("run", owner, resumed=not forgotten)
        raise RuntimeError(f"could not claim idempotency key {key!r}")

    async def renew(self, scope: str, key: str, owner: uuid.UUID) -> bool:
        """Extend the lease of a request still running; False if it lost the key."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(idempotency_keys)
                .where(
                    self._row(scope, key),
                    idempotency_keys.c.owner == owner,
                    idempotency_keys.c.state == "in_progress",
                )
                .values(locked_until=sa.func.now() + self.lease)
            )
        return bool(result.rowcount)

    async def complete(
        self,
        scope: str,
        key: str,
        owner: uuid.UUID,
        *,
        status: int,
        headers: list[list[str]],
        body: bytes,
    ) -> bool:
        """Keep the answer for replays; False if the key was taken over meanwhile."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(idempotency_keys)
                .where(self._row(scope, key), idempotency_keys.c.owner == owner)
                .values(state="done", status=status, headers=headers, body=body)
            )
        return bool(result.rowcount)

    async def release(self, scope: str, key: str, owner: uuid.UUID) -> None:
        """Forget the key: its request failed on our side, and a retry should run again."""
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(idempotency_keys).where(
                    self._row(scope, key), idempotency_keys.c.owner == owner
                )
            )

    async def purge(self, batch: int = 1000) -> int:
        """Delete up to ``batch`` keys older than the TTL; how many went."""
        t = idempotency_keys
        old = (
            sa.select(t.c.scope, t.c.key)
            .where(t.c.created_at < sa.func.now() - self.ttl)
            .limit(batch)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(sa.tuple_(t.c.scope, t.c.key).in_(old))
            )
        return int(result.rowcount)
