"""Where throttling counts are kept: one table in the service's own database, shared
by all its replicas, and its queries (the rules are ``throttle_rules``).

Each admission runs in one transaction: the keys' rows are made if missing, then
locked (in key order, so two admissions never wait on each other crosswise), the
rules decide on the database's clock, and either every key is charged or, when one
is locked, none is. Rows are deleted once they stop mattering (``purge``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .errors import TooManyAttempts
from .throttle_rules import Admitted, Budget, Count, Refused, admit, forget_at, take_back

metadata = sa.MetaData()

throttle_counts = sa.Table(
    "throttle_counts",
    metadata,
    # A hash of the limit's name and the key's value (``throttle_rules.key_of``).
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("strikes", sa.Integer, nullable=False, server_default="0"),
    # When the row stops mattering; ``purge`` deletes it after that.
    sa.Column(
        "forget_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
sa.Index("ix_throttle_counts_forget_at", throttle_counts.c.forget_at)

PURGE_BATCH = 5000


def create_throttle_counts() -> None:
    """Alembic operation: create the table (in a service that throttles calls)."""
    metadata.create_all(op.get_bind())


def drop_throttle_counts() -> None:
    """Alembic operation: drop it again."""
    metadata.drop_all(op.get_bind())


@dataclass(frozen=True)
class Charge:
    """One key charged by an admission: what to take back or forget afterwards."""

    key: str
    budget: Budget
    admitted: Admitted


def _count(row: sa.Row[tuple[object, ...]]) -> Count:
    return Count(row.attempts, row.window_start, row.locked_until, row.strikes)


async def _write(conn: AsyncConnection, key: str, count: Count, budget: Budget) -> None:
    forget = forget_at(count, budget)
    await conn.execute(
        sa.update(throttle_counts)
        .where(throttle_counts.c.key == key)
        .values(
            attempts=count.attempts,
            window_start=count.window_start,
            locked_until=count.locked_until,
            strikes=count.strikes,
            forget_at=forget if forget is not None else sa.func.now(),
        )
    )


class ThrottleStore:
    """The ``throttle_counts`` table of one service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def admit(self, keys: Sequence[tuple[str, Budget]]) -> list[Charge]:
        """Charge one attempt to each key, or none of them: ``TooManyAttempts`` (with
        the longest wait) when any key is locked."""
        budgets = dict(keys)
        ordered = sorted(budgets)
        async with self.engine.begin() as conn:
            await conn.execute(
                pg_insert(throttle_counts)
                .values([{"key": key} for key in ordered])
                .on_conflict_do_nothing(index_elements=["key"])
            )
            rows = (
                await conn.execute(
                    sa.select(throttle_counts, sa.func.now().label("now"))
                    .where(throttle_counts.c.key.in_(ordered))
                    .order_by(throttle_counts.c.key)
                    .with_for_update()
                )
            ).all()
            charges: list[Charge] = []
            waits: list[int] = []
            for row in rows:
                now: datetime = row.now
                verdict = admit(_count(row), now, budgets[row.key])
                if isinstance(verdict, Refused):
                    waits.append(verdict.retry_after)
                else:
                    charges.append(Charge(row.key, budgets[row.key], verdict))
            if waits:
                # Leaving the block with the error rolls back: no key is charged.
                raise TooManyAttempts(
                    f"Too many attempts. Try again in {_wait_text(max(waits))}.",
                    retry_after=max(waits),
                )
            for charge in charges:
                await _write(conn, charge.key, charge.admitted.count, charge.budget)
        return charges

    async def take_back(self, charge: Charge) -> None:
        """Undo one admission's charge of its key (the call did not fail)."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(throttle_counts)
                    .where(throttle_counts.c.key == charge.key)
                    .with_for_update()
                )
            ).first()
            if row is not None:
                await _write(
                    conn, charge.key, take_back(_count(row), charge.admitted), charge.budget
                )

    async def forget(self, key: str) -> None:
        """Clear a key (a successful sign-in forgets its account's failures)."""
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(throttle_counts).where(throttle_counts.c.key == key))

    async def purge(self) -> int:
        """Delete a batch of rows that stopped mattering; how many went."""
        async with self.engine.begin() as conn:
            stale = (
                sa.select(throttle_counts.c.key)
                .where(throttle_counts.c.forget_at < sa.func.now())
                .limit(PURGE_BATCH)
                .with_for_update(skip_locked=True)
            )
            result = await conn.execute(
                sa.delete(throttle_counts).where(throttle_counts.c.key.in_(stale.scalar_subquery()))
            )
            return int(result.rowcount or 0)


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"
