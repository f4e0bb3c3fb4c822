"""The record's queries: a membership's history, and training plans, transcripts and
revoked certificates (the tables are in ``tables``).

Training is kept per (department, person), apart from the users table: a person's
training may be stored before they are a member, and stays while they are removed.
The record shows it whenever the person is a current member.

Every write is an upsert keyed by what the event is about, not by the event, so
the same assignment or completion sent again (a new ``event_id``, or a replay)
leaves one row. A revocation has a table of its own: it applies whichever of
it and the completion is stored first.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted

from ..rules import UserRow
from ..tables import activity, completions, departments, history, plans, revocations, users
from .rules import Assignment, Completion, HistoryEntry


def _decimal(value: float) -> Decimal:
    # Through str: 4.1 is stored as 4.1, not as the binary float's 4.0999999...
    return Decimal(str(value))


async def upsert_assignment(
    conn: AsyncConnection, event: CourseAssigned, occurred_at: datetime
) -> None:
    """Put a course on the person's plan, or replace it (a later event wins)."""
    stmt = pg_insert(plans).values(
        department_id=event.department_id,
        account_id=event.account_id,
        course_id=event.course_id,
        title=event.title,
        plan=event.plan,
        due_on=event.due_on,
        assigned_at=event.assigned_at,
        updated_at=occurred_at,
    )
    changed = ("title", "plan", "due_on", "assigned_at", "updated_at")
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[plans.c.department_id, plans.c.account_id, plans.c.course_id],
            set_={c: stmt.excluded[c] for c in changed},
            where=plans.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def upsert_completion(
    conn: AsyncConnection, event: CourseCompleted, occurred_at: datetime
) -> None:
    """Record a completion under its certificate; the same certificate again is one entry."""
    stmt = pg_insert(completions).values(
        department_id=event.department_id,
        account_id=event.account_id,
        certificate_id=event.certificate_id,
        course_id=event.course_id,
        title=event.title,
        completed_on=event.completed_on,
        hours=_decimal(event.hours),
        credits=_decimal(event.credits),
        updated_at=occurred_at,
    )
    changed = ("course_id", "title", "completed_on", "hours", "credits", "updated_at")
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                completions.c.department_id,
                completions.c.account_id,
                completions.c.certificate_id,
            ],
            set_={c: stmt.excluded[c] for c in changed},
            where=completions.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def add_revocation(conn: AsyncConnection, event: CertificateRevoked) -> None:
    """Mark a certificate revoked (before or after its completion is stored)."""
    await conn.execute(
        pg_insert(revocations)
        .values(
            department_id=event.department_id,
            account_id=event.account_id,
            certificate_id=event.certificate_id,
            reason=event.reason,
            revoked_at=event.revoked_at,
        )
        .on_conflict_do_nothing(
            index_elements=[
                revocations.c.department_id,
                revocations.c.account_id,
                revocations.c.certificate_id,
            ]
        )
    )


def _of(table: sa.Table, department_id: uuid.UUID, account_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.department_id == department_id, table.c.account_id == account_id)


async def assignments_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> list[Assignment]:
    """The courses on the person's plan in the department (in no particular order)."""
    rows = await conn.execute(
        sa.select(
            plans.c.course_id,
            plans.c.title,
            plans.c.plan,
            plans.c.due_on,
            plans.c.assigned_at,
        ).where(_of(plans, department_id, account_id))
    )
    return [Assignment(**r) for r in rows.mappings()]


async def completions_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> list[Completion]:
    """The person's transcript in the department, revoked entries marked (no order)."""
    joined = completions.outerjoin(
        revocations,
        sa.and_(
            revocations.c.department_id == completions.c.department_id,
            revocations.c.account_id == completions.c.account_id,
            revocations.c.certificate_id == completions.c.certificate_id,
        ),
    )
    rows = await conn.execute(
        sa.select(
            completions.c.certificate_id,
            completions.c.course_id,
            completions.c.title,
            completions.c.completed_on,
            completions.c.hours,
            completions.c.credits,
            revocations.c.revoked_at,
            revocations.c.reason.label("revoke_reason"),
        )
        .select_from(joined)
        .where(_of(completions, department_id, account_id))
    )
    return [Completion(**r) for r in rows.mappings()]


async def history_of(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> list[HistoryEntry]:
    """A membership's history, oldest first, each entry with who made it (the activity
    log's row of the same event; none for entries recorded before the log existed)."""
    rows = await conn.execute(
        sa.select(
            history.c.occurred_at,
            history.c.event,
            history.c.details,
            activity.c.actor_kind,
            activity.c.actor_id,
        )
        .select_from(history.outerjoin(activity, activity.c.event_id == history.c.event_id))
        .where(history.c.department_id == department_id, history.c.account_id == account_id)
        .order_by(history.c.occurred_at, history.c.event_id)
    )
    return [
        HistoryEntry(r.occurred_at, r.event, dict(r.details), r.actor_kind, r.actor_id)
        for r in rows
    ]


async def memberships_of(
    conn: AsyncConnection, account_id: uuid.UUID
) -> list[tuple[UserRow, str | None]]:
    """Every department the person is or was a member of: their row there (a removed
    one too, ``removed_at`` set) with the department's name, by name then id."""
    rows = await conn.execute(
        sa.select(users, departments.c.name.label("department_name"))
        .select_from(
            users.outerjoin(departments, departments.c.department_id == users.c.department_id)
        )
        .where(users.c.account_id == account_id)
        .order_by(departments.c.name, users.c.department_id)
    )
    return [(UserRow.of(r), r["department_name"]) for r in rows.mappings()]
