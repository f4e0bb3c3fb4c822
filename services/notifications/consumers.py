"""Notifications' handlers table: payload type -> handler (thin: parse, call the use case)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import Payload, RawEnvelope
from prodigy_users.contracts.identity import (
    AccountUpdated,
    AddressConfirmationIssued,
    EmailChangeConfirmationIssued,
    EmailConfirmationIssued,
    PasswordLinkIssued,
    PasswordLinksIssued,
    TokensRevoked,
)
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    InvitationLinkIssued,
    MemberAdded,
    MemberMerged,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    SignInToJoinRequested,
    WelcomeRequested,
)
from prodigy_users.runtime import revocation_store
from prodigy_users.runtime.consumer import BatchHandler, Handler
from prodigy_users.runtime.uow import UnitOfWork

from . import service
from .settings import Settings


async def department_created(
    uow: UnitOfWork, envelope: RawEnvelope, payload: DepartmentCreated
) -> None:
    """Keep the department's name."""
    await service.remember_department(uow, payload)


async def member_role(uow: UnitOfWork, envelope: RawEnvelope, payload: service.RoleEvent) -> None:
    """Keep who administers the department (they read its email log); someone who
    stops being an admin, or is removed, no longer reads it."""
    await service.remember_roles(uow.conn, [payload])


# Each event that asks for emails -> the queued rows that answer it.
EMAIL_ROWS: dict[type[Payload], Callable[[RawEnvelope, Any], list[dict[str, Any]]]] = {
    PasswordLinkIssued: lambda envelope, p: [service.password_link_email(envelope, p)],
    PasswordLinksIssued: service.password_links_emails,
    InvitationLinkIssued: lambda envelope, p: [service.invitation_email(envelope, p)],
    WelcomeRequested: lambda envelope, p: [service.welcome_email(envelope, p)],
    EmailConfirmationIssued: lambda envelope, p: [service.confirmation_email(envelope, p)],
    SignInToJoinRequested: lambda envelope, p: [service.sign_in_to_join_email(envelope, p)],
    EmailChangeConfirmationIssued: lambda envelope, p: [
        service.address_confirmation_email(envelope, p, "change_email")
    ],
    AddressConfirmationIssued: lambda envelope, p: [
        service.address_confirmation_email(envelope, p, "link_address")
    ],
    # A changed login email: a notice to the old address.
    AccountUpdated: service.email_changed_emails,
}


def handlers(settings: Settings) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    name_wait = timedelta(seconds=settings.department_name_wait_s)

    async def emails_asked(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
        """Queue the emails the event asks for: welcome or password-reset links (one or a
        batch), an invitation or its reminder (a new event: a new email), "you joined",
        a registration's confirmation link, "sign in to join" for an address's owner,
        a new login email's confirmation link and the notice to the old address."""
        rows = EMAIL_ROWS[type(payload)](envelope, payload)
        await service.queue_many(uow.conn, rows, name_wait=name_wait)

    return {
        DepartmentCreated: department_created,
        MemberAdded: member_role,
        MemberRoleChanged: member_role,
        MemberRestored: member_role,
        MemberRemoved: member_role,
        # One person's two accounts merged: the kept one may be the admin now.
        MemberMerged: member_role,
        **dict.fromkeys(EMAIL_ROWS, emails_asked),
        # The access-token cut-offs the verifier checks.
        TokensRevoked: revocation_store.record,
    }


# A member who is no admin joining or coming back: nothing to keep, and nothing to
# write in the inbox (most of a bulk upload's MemberAdded).
IGNORED: Mapping[type[Payload], Callable[[Any], bool]] = {
    MemberAdded: service.is_not_admin,
    MemberRestored: service.is_not_admin,
    # A name changed, no login email: nothing to send.
    AccountUpdated: service.is_not_email_change,
}

ROLE_EVENTS: frozenset[type[Payload]] = frozenset(
    {MemberAdded, MemberRoleChanged, MemberRestored, MemberRemoved, MemberMerged}
)
BATCH_TYPES = frozenset(EMAIL_ROWS) | ROLE_EVENTS


def batch_handler(settings: Settings) -> BatchHandler:
    """Apply a run of events in a few statements: a bulk import's thousands of
    credentials and member-added events arrive together. The emails are queued in
    one insert, the roles kept in one upsert (and one delete); the per-message
    handlers do the same one by one. The two kinds touch different tables, so
    neither's order relative to the other's matters."""
    name_wait = timedelta(seconds=settings.department_name_wait_s)

    async def apply_run(conn: AsyncConnection, run: Sequence[tuple[RawEnvelope, Any]]) -> None:
        rows = [
            row
            for envelope, p in run
            if type(p) in EMAIL_ROWS
            for row in EMAIL_ROWS[type(p)](envelope, p)
        ]
        await service.remember_roles(conn, [p for _, p in run if type(p) in ROLE_EVENTS])
        await service.queue_many(conn, rows, name_wait=name_wait)

    return apply_run
