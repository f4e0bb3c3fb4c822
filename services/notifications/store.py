"""Notifications' tables and the queries on them (SQLAlchemy Core on ``uow.conn``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import DUE_STATUSES, EmailLogEntry, EmailStatus, OutgoingEmail

# NOTIFY'd in the transaction that queues an email: delivered at commit, it wakes
# the delivery workers of every replica.
EMAILS_CHANNEL = "notifications_emails"

metadata = sa.MetaData()

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# Who administers which department: the email log's only readers.
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

emails = sa.Table(
    "emails",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("source_event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("recipient_name", sa.Text, nullable=False),
    sa.Column("department_id", UUID(as_uuid=True), nullable=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=True),
    # Still sealed to our key: nothing secret is stored in the clear. Cleared once
    # the email is sent or given up on.
    sa.Column("sealed_token", sa.Text, nullable=True),
    sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=True),
    # What else the template shows (role, inviter's name): never a secret.
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("correlation_id", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # When the email is next due; while ``sending`` it is the end of the lease.
    sa.Column(
        "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("source_event_id", "template", name="emails_source_template"),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'retrying', 'sent', 'failed')", name="emails_status"
    ),
)
sa.Index(
    "emails_due",
    emails.c.next_attempt_at,
    postgresql_where=emails.c.status.in_(DUE_STATUSES),
)
sa.Index("emails_department", emails.c.department_id, emails.c.created_at.desc())


async def upsert_department(conn: AsyncConnection, department_id: uuid.UUID, name: str) -> None:
    """Remember (or rename) a department."""
    stmt = pg_insert(departments).values(department_id=department_id, name=name)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.department_id],
            set_={"name": stmt.excluded.name, "updated_at": sa.func.now()},
        )
    )


async def upsert_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID, role: str
) -> None:
    """Remember a person's role in a department."""
    stmt = pg_insert(memberships).values(
        department_id=department_id, account_id=account_id, role=role
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[memberships.c.department_id, memberships.c.account_id],
            set_={"role": stmt.excluded.role, "updated_at": sa.func.now()},
        )
    )


async def role_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The person's role in the department, or None if not a member."""
    row = await conn.execute(
        sa.select(memberships.c.role).where(
            memberships.c.department_id == department_id,
            memberships.c.account_id == account_id,
        )
    )
    return row.scalar_one_or_none()


async def department_known(conn: AsyncConnection, department_id: uuid.UUID) -> bool:
    """Whether we have the department's name."""
    row = await conn.execute(
        sa.select(departments.c.department_id).where(departments.c.department_id == department_id)
    )
    return row.first() is not None


async def release_held(conn: AsyncConnection, department_id: uuid.UUID) -> int:
    """Make the department's emails that wait for its name due now; how many."""
    released = await conn.execute(
        sa.update(emails)
        .where(
            emails.c.department_id == department_id,
            emails.c.status == "pending",
            emails.c.next_attempt_at > sa.func.now(),
        )
        .values(next_attempt_at=sa.func.now())
        .returning(emails.c.id)
    )
    count = len(released.all())
    if count:
        await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return count


async def delete_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> None:
    """Forget a person's role in a department (they were removed)."""
    await conn.execute(
        sa.delete(memberships).where(
            memberships.c.department_id == department_id,
            memberships.c.account_id == account_id,
        )
    )


async def insert_email(
    conn: AsyncConnection, values: dict[str, Any], *, hold: timedelta | None = None
) -> bool:
    """Queue an email; False if this source event already queued this template.

    ``hold``: the email is due only after this long (``release_held`` ends the wait).
    """
    if hold is not None:
        values = {**values, "next_attempt_at": sa.func.now() + hold}
    stmt = (
        pg_insert(emails)
        .values(**values)
        .on_conflict_do_nothing(constraint="emails_source_template")
        .returning(emails.c.id)
    )
    inserted = (await conn.execute(stmt)).first() is not None
    if inserted:
        await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return inserted


async def claim_due(conn: AsyncConnection, *, limit: int, lease: timedelta) -> list[OutgoingEmail]:
    """Take up to ``limit`` due emails: mark them ``sending`` under a lease, count the attempt.

    ``SKIP LOCKED`` lets replicas claim side by side without waiting on each other.
    """
    due = (
        sa.select(emails.c.id)
        .where(emails.c.status.in_(DUE_STATUSES), emails.c.next_attempt_at <= sa.func.now())
        .order_by(emails.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (
        await conn.execute(
            sa.update(emails)
            .where(emails.c.id.in_(due))
            .values(
                status="sending",
                attempts=emails.c.attempts + 1,
                next_attempt_at=sa.func.now() + lease,
            )
            .returning(*emails.c)
        )
    ).all()
    if not rows:
        return []
    names = await department_names(conn, {r.department_id for r in rows if r.department_id})
    return [
        OutgoingEmail(
            id=r.id,
            source_event_id=r.source_event_id,
            template=r.template,
            to=r.recipient,
            recipient_name=r.recipient_name,
            department_id=r.department_id,
            department_name=names.get(r.department_id) if r.department_id else None,
            account_id=r.account_id,
            sealed_token=r.sealed_token,
            link_expires_at=r.link_expires_at,
            correlation_id=r.correlation_id,
            attempts=r.attempts,
            details={str(k): str(v) for k, v in (r.details or {}).items()},
        )
        for r in rows
    ]


async def department_names(conn: AsyncConnection, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of the departments we know among ``ids``."""
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(departments.c.department_id, departments.c.name).where(
            departments.c.department_id.in_(ids)
        )
    )
    return {r.department_id: r.name for r in rows}


def _held(email_id: uuid.UUID, attempts: int) -> sa.ColumnElement[bool]:
    # The lease is ours only while the row is still ``sending`` for our attempt.
    return sa.and_(
        emails.c.id == email_id, emails.c.status == "sending", emails.c.attempts == attempts
    )


async def mark_sent(conn: AsyncConnection, email_id: uuid.UUID, attempts: int) -> datetime | None:
    """Record the send; returns ``sent_at``, or None if the lease was lost."""
    row = await conn.execute(
        sa.update(emails)
        .where(_held(email_id, attempts))
        .values(status="sent", sent_at=sa.func.now(), sealed_token=None, last_error=None)
        .returning(emails.c.sent_at)
    )
    sent_at: datetime | None = row.scalar_one_or_none()
    return sent_at


async def mark_retrying(
    conn: AsyncConnection, email_id: uuid.UUID, attempts: int, delay: timedelta, error: str
) -> bool:
    """Schedule the next attempt after ``delay``; False if the lease was lost."""
    result = await conn.execute(
        sa.update(emails)
        .where(_held(email_id, attempts))
        .values(status="retrying", next_attempt_at=sa.func.now() + delay, last_error=error)
        .returning(emails.c.id)
    )
    return result.first() is not None


async def mark_failed(
    conn: AsyncConnection, email_id: uuid.UUID, attempts: int, error: str
) -> bool:
    """Give up on the email; False if the lease was lost."""
    result = await conn.execute(
        sa.update(emails)
        .where(_held(email_id, attempts))
        .values(status="failed", last_error=error, sealed_token=None)
        .returning(emails.c.id)
    )
    return result.first() is not None


async def seconds_until_next_due(conn: AsyncConnection) -> float | None:
    """How long until the earliest email falls due (0 if one is due now), None if none."""
    value = await conn.scalar(
        sa.select(sa.extract("epoch", sa.func.min(emails.c.next_attempt_at) - sa.func.now())).where(
            emails.c.status.in_(DUE_STATUSES)
        )
    )
    return None if value is None else max(float(value), 0.0)


async def list_emails(
    conn: AsyncConnection,
    department_id: uuid.UUID,
    *,
    status: EmailStatus | None,
    limit: int,
) -> list[EmailLogEntry]:
    """A department's email log, newest first."""
    query = (
        sa.select(
            emails.c.id,
            emails.c.recipient,
            emails.c.template,
            emails.c.status,
            emails.c.attempts,
            emails.c.created_at,
            emails.c.sent_at,
            emails.c.last_error,
        )
        .where(emails.c.department_id == department_id)
        .order_by(emails.c.created_at.desc(), emails.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(emails.c.status == status)
    return [
        EmailLogEntry(
            id=r.id,
            to=r.recipient,
            template=r.template,
            status=r.status,
            attempts=r.attempts,
            created_at=r.created_at,
            sent_at=r.sent_at,
            last_error=r.last_error,
        )
        for r in await conn.execute(query)
    ]
