"""Notifications' handlers table: payload type -> handler (thin: parse, call the use case)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import Payload, RawEnvelope
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
from prodigy_users.runtime.consumer import BatchHandler, Handler
from prodigy_users.runtime.uow import UnitOfWork

from . import service
from .settings import Settings


async def department_created(
    uow: UnitOfWork, envelope: RawEnvelope, payload: DepartmentCreated
) -> None:
    """Keep the department's name."""
    await service.remember_department(uow, payload)


async def member_role(
    uow: UnitOfWork,
    envelope: RawEnvelope,
    payload: MemberAdded | MemberRoleChanged | MemberRestored,
) -> None:
    """Keep the member's current role (admins read the email log)."""
    await service.remember_role(uow, payload)


async def member_removed(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberRemoved) -> None:
    """A removed admin no longer reads the email log."""
    await service.forget_member(uow, payload)


def handlers(settings: Settings) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    name_wait = timedelta(seconds=settings.department_name_wait_s)

    async def password_link_issued(
        uow: UnitOfWork, envelope: RawEnvelope, payload: PasswordLinkIssued
    ) -> None:
        """Queue the welcome or password-reset email."""
        row = service.password_link_email(envelope, payload)
        await service.queue(uow, row, name_wait=name_wait)

    async def invitation_link_issued(
        uow: UnitOfWork, envelope: RawEnvelope, payload: InvitationLinkIssued
    ) -> None:
        """Queue the invitation email, or its reminder (a new event: a new email)."""
        await service.queue(uow, service.invitation_email(envelope, payload), name_wait=name_wait)

    async def welcome_requested(
        uow: UnitOfWork, envelope: RawEnvelope, payload: WelcomeRequested
    ) -> None:
        """Queue the "you joined" email."""
        await service.queue(uow, service.welcome_email(envelope, payload), name_wait=name_wait)

    return {
        DepartmentCreated: department_created,
        MemberAdded: member_role,
        MemberRoleChanged: member_role,
        MemberRestored: member_role,
        MemberRemoved: member_removed,
        PasswordLinkIssued: password_link_issued,
        InvitationLinkIssued: invitation_link_issued,
        WelcomeRequested: welcome_requested,
    }


# Each event that asks for an email -> the queued row that answers it.
EMAIL_ROWS: dict[type[Payload], Callable[[RawEnvelope, Any], dict[str, Any]]] = {
    PasswordLinkIssued: service.password_link_email,
    InvitationLinkIssued: service.invitation_email,
    WelcomeRequested: service.welcome_email,
}
BATCH_TYPES = frozenset(EMAIL_ROWS)


def batch_handler(settings: Settings) -> BatchHandler:
    """Queue the emails of a run of events in one statement (a bulk import's thousands of
    credentials events arrive together); the per-message handlers do the same one by one."""
    name_wait = timedelta(seconds=settings.department_name_wait_s)

    async def queue_emails(conn: AsyncConnection, run: Sequence[tuple[RawEnvelope, Any]]) -> None:
        rows = [EMAIL_ROWS[type(payload)](envelope, payload) for envelope, payload in run]
        await service.queue_many(conn, rows, name_wait=name_wait)

    return queue_emails
