"""Notifications' use cases, each one unit of work (state change + its events)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    InvitationLinkIssued,
    MemberAdded,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    WelcomeRequested,
)
from prodigy_users.contracts.notifications import EmailFailed, EmailSent
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import (
    EmailLogEntry,
    EmailStatus,
    OutgoingEmail,
    RetryPolicy,
    department_hold,
    event_key,
    invitation_template,
    short_error,
    template_for,
)

SERVICE = "notifications"


async def remember_department(uow: UnitOfWork, payload: DepartmentCreated) -> None:
    """Keep the department's name for the emails sent on its behalf.

    Emails that were waiting for the name go out now.
    """
    await store.upsert_department(uow.conn, payload.department_id, payload.name)
    await store.release_held(uow.conn, payload.department_id)


async def remember_role(
    uow: UnitOfWork, payload: MemberAdded | MemberRoleChanged | MemberRestored
) -> None:
    """Keep the person's current role: admins of a department may read its email log."""
    await store.upsert_membership(uow.conn, payload.department_id, payload.account_id, payload.role)


async def forget_member(uow: UnitOfWork, payload: MemberRemoved) -> None:
    """A removed person reads nothing of the department any more."""
    await store.delete_membership(uow.conn, payload.department_id, payload.account_id)


def password_link_email(envelope: RawEnvelope, payload: PasswordLinkIssued) -> dict[str, Any]:
    """The queued row for a set-password link: the token still sealed."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": template_for(payload.purpose),
        "recipient": str(payload.email),
        "recipient_name": payload.name,
        "department_id": payload.department_id,
        "account_id": payload.account_id,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "correlation_id": envelope.correlation_id,
    }


def invitation_email(envelope: RawEnvelope, payload: InvitationLinkIssued) -> dict[str, Any]:
    """The queued row for an invitation or a reminder: the token still sealed."""
    details: dict[str, str] = {"role": payload.role}
    if payload.invited_by_name:
        details["inviter"] = payload.invited_by_name
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": invitation_template(reminder=payload.reminder),
        "recipient": str(payload.email),
        "recipient_name": "",  # an invitation goes to an address, not yet to a person
        "department_id": payload.department_id,
        "account_id": None,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "details": details,
        "correlation_id": envelope.correlation_id,
    }


def welcome_email(envelope: RawEnvelope, payload: WelcomeRequested) -> dict[str, Any]:
    """The queued row for "you joined <department>": no link secret in it."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": "welcome_joined",
        "recipient": str(payload.email),
        "recipient_name": payload.name,
        "department_id": payload.department_id,
        "account_id": payload.account_id,
        "sealed_token": None,
        "link_expires_at": None,
        "correlation_id": envelope.correlation_id,
    }


async def queue(uow: UnitOfWork, row: dict[str, Any], *, name_wait: timedelta) -> bool:
    """Queue an email once per (source event, template); False if it already was.

    An email for a department whose name has not arrived yet waits for it a little.
    """
    department_id: uuid.UUID | None = row["department_id"]
    hold = None
    if department_id is not None:
        hold = department_hold(await store.department_known(uow.conn, department_id), name_wait)
    return await store.insert_email(uow.conn, row, hold=hold)


async def claim_due(engine: AsyncEngine, *, limit: int, lease: timedelta) -> list[OutgoingEmail]:
    """Claim the emails that are due, under a lease (committed before anything is sent)."""
    async with UnitOfWork(engine, SERVICE) as uow:
        claimed = await store.claim_due(uow.conn, limit=limit, lease=lease)
        await uow.commit()
    return claimed


def _unit(engine: AsyncEngine, email: OutgoingEmail) -> UnitOfWork:
    # Events about an email carry the request that caused it and the event it answers.
    return UnitOfWork(
        engine,
        SERVICE,
        correlation_id=email.correlation_id,
        causation_id=str(email.source_event_id),
    )


async def record_sent(engine: AsyncEngine, email: OutgoingEmail) -> bool:
    """Mark the email sent and emit ``EmailSent``; False if another worker owns it now."""
    async with _unit(engine, email) as uow:
        sent_at = await store.mark_sent(uow.conn, email.id, email.attempts)
        if sent_at is None:
            return False
        uow.emit(
            EmailSent(
                email_id=email.id,
                template=email.template,
                to=email.to,
                department_id=email.department_id,
                source_event_id=email.source_event_id,
                sent_at=sent_at,
                attempts=email.attempts,
            ),
            key=event_key(email.department_id, email.to),
        )
        await uow.commit()
    return True


async def record_failure(
    engine: AsyncEngine,
    email: OutgoingEmail,
    error: str,
    policy: RetryPolicy,
    *,
    permanent: bool = False,
) -> EmailStatus | None:
    """Schedule a retry, or give up and emit ``EmailFailed`` after the last attempt.

    Returns the new status, or None if another worker owns the email now.
    """
    error = short_error(error)
    delay = policy.after_failure(email.attempts, permanent=permanent)
    async with _unit(engine, email) as uow:
        if delay is not None:
            if not await store.mark_retrying(uow.conn, email.id, email.attempts, delay, error):
                return None
            await uow.commit()
            return "retrying"
        if not await store.mark_failed(uow.conn, email.id, email.attempts, error):
            return None
        uow.emit(
            EmailFailed(
                email_id=email.id,
                template=email.template,
                to=email.to,
                department_id=email.department_id,
                source_event_id=email.source_event_id,
                error=error,
                attempts=email.attempts,
            ),
            key=event_key(email.department_id, email.to),
        )
        await uow.commit()
    return "failed"


async def seconds_until_next_due(engine: AsyncEngine) -> float | None:
    """How long the worker may sleep before an email falls due."""
    async with engine.connect() as conn:
        return await store.seconds_until_next_due(conn)


async def role_of(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The caller's role in the department, as far as notifications has heard."""
    async with engine.connect() as conn:
        return await store.role_of(conn, department_id, account_id)


async def email_log(
    engine: AsyncEngine, department_id: uuid.UUID, *, status: EmailStatus | None, limit: int
) -> list[EmailLogEntry]:
    """The department's email log, newest first."""
    async with engine.connect() as conn:
        return await store.list_emails(conn, department_id, status=status, limit=limit)
