"""Notifications' handlers table: payload type -> handler (thin: parse, call the use case)."""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload, RawEnvelope
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded
from prodigy_users.runtime.consumer import Handler
from prodigy_users.runtime.uow import UnitOfWork

from . import service


async def department_created(
    uow: UnitOfWork, envelope: RawEnvelope, payload: DepartmentCreated
) -> None:
    """Keep the department's name."""
    await service.remember_department(uow, payload)


async def member_added(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberAdded) -> None:
    """Keep the member's role (admins read the email log)."""
    await service.remember_member(uow, payload)


async def password_link_issued(
    uow: UnitOfWork, envelope: RawEnvelope, payload: PasswordLinkIssued
) -> None:
    """Queue the welcome or password-reset email."""
    await service.queue_password_link(uow, envelope, payload)


HANDLERS: dict[type[Payload], Handler] = {
    DepartmentCreated: department_created,
    MemberAdded: member_added,
    PasswordLinkIssued: password_link_issued,
}
