"""Outbox, inbox and relay-state tables, present in every service's database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    # The id orders publication: rows go out in id order, which keeps per-key order.
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    # Kafka headers the relay sends with the event (the W3C trace context of the
    # request or message that caused it), so a trace follows it across the hop.
    sa.Column("headers", JSONB, nullable=True),
)
sa.Index("outbox_unpublished", outbox.c.id, postgresql_where=outbox.c.published_at.is_(None))

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

relay_state = sa.Table(
    "relay_state",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("broker_epoch", sa.Text, nullable=True),
    # While a reset broker is refilled: the outbox id republished up to (NULL: not
    # republishing). Kept here so that a relay taking over goes on where it stopped.
    sa.Column("resend_after", sa.BigInteger, nullable=True),
)


# Columns later revisions add (``add_outbox_headers``; ``resend_after`` by each
# service's dead-letters revision).
_ADDED_LATER = (("outbox", "headers"), ("relay_state", "resend_after"))


def create_messaging_tables() -> None:
    """Alembic operation: create the three tables as the first revision had them.

    The tables are declared here in their current shape, so the columns that later
    revisions add are dropped again at once: every revision stays reproducible.
    """
    bind = op.get_bind()
    metadata.create_all(bind)
    for table, column in _ADDED_LATER:
        op.drop_column(table, column)


def add_outbox_headers() -> None:
    """Alembic operation: the outbox's ``headers`` column (trace context per event)."""
    op.add_column("outbox", sa.Column("headers", JSONB, nullable=True))


def drop_outbox_headers() -> None:
    """Alembic operation: drop it again."""
    op.drop_column("outbox", "headers")


def drop_messaging_tables() -> None:
    """Alembic operation: drop them again."""
    bind = op.get_bind()
    metadata.drop_all(bind)
