"""Where a consumer's resume points are kept: one row per topic and partition, written in
the transaction that holds the effects of the records it covers (``resume_rules``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .resume_rules import Position, TopicPartition

metadata = sa.MetaData()

consumer_positions = sa.Table(
    "consumer_positions",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    # Every record of the partition before this offset has been handled.
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    # The record at next_offset - 1: its event_id, or sha256:<hex> of its bytes.
    sa.Column("last_event_id", sa.Text, nullable=False),
    # The broker epoch whose offsets these are (the embedded broker's, see the relay).
    sa.Column("epoch", sa.Text, nullable=True),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


async def save(
    conn: AsyncConnection, consumer: str, positions: Mapping[TopicPartition, Position]
) -> None:
    """Record these positions (in the caller's transaction, with the effects)."""
    if not positions:
        return
    stmt = pg_insert(consumer_positions).values(
        [
            {
                "consumer": consumer,
                "topic": topic,
                "partition": partition,
                "next_offset": p.next_offset,
                "last_event_id": p.mark,
                "epoch": p.epoch,
            }
            for (topic, partition), p in sorted(positions.items())
        ]
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["consumer", "topic", "partition"],
            set_={
                "next_offset": stmt.excluded.next_offset,
                "last_event_id": stmt.excluded.last_event_id,
                "epoch": stmt.excluded.epoch,
                "updated_at": sa.func.now(),
            },
        )
    )


async def load(
    engine: AsyncEngine, consumer: str, partitions: Collection[TopicPartition]
) -> dict[TopicPartition, Position]:
    """The stored positions of these partitions (those that have one)."""
    wanted = set(partitions)
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                consumer_positions.c.topic,
                consumer_positions.c.partition,
                consumer_positions.c.next_offset,
                consumer_positions.c.last_event_id,
                consumer_positions.c.epoch,
            ).where(
                consumer_positions.c.consumer == consumer,
                consumer_positions.c.topic.in_(sorted({t for t, _ in wanted})),
            )
        )
        return {
            (r.topic, r.partition): Position(r.next_offset, r.last_event_id, r.epoch)
            for r in rows
            if (r.topic, r.partition) in wanted
        }


async def forget(engine: AsyncEngine, consumer: str) -> None:
    """Drop every stored position of the consumer (it reads everything again)."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(consumer_positions).where(consumer_positions.c.consumer == consumer)
        )
