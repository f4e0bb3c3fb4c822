"""Finishing a registration once identity has made the account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prodigy_users.contracts.membership import InvitationAccepted
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store_invitations
from .domain import domain_allowed, invitation_refusal
from .joining import Joined, join


def invitation_problem(refusal: str) -> Problem:
    """400 saying which of used / revoked / expired / invalid a link is."""
    detail = {
        "used": "This invitation has already been used.",
        "revoked": "This invitation was withdrawn by the department.",
        "expired": "This invitation has expired; ask the department for a new one.",
        "invalid": "This invitation link is not valid.",
    }[refusal]
    return Problem(400, f"invitation-{refusal}", "Invitation cannot be used", detail)


def link_problem(refusal: str) -> Problem:
    """400/403 for a registration link that cannot be used."""
    if refusal == "domain":
        return Problem(
            403,
            "email-domain-not-allowed",
            "Email domain not allowed",
            "This department only accepts registrations from certain email domains.",
            errors=[{"field": "email", "message": "domain not allowed for this department"}],
        )
    if refusal == "expired":
        return Problem(
            400, "registration-link-expired", "Link expired", "This registration link has expired."
        )
    return Problem(
        400,
        "registration-link-invalid",
        "Link not valid",
        "This registration link is not valid (it may have been replaced or switched off).",
    )


async def accept_invitation(
    uow: UnitOfWork,
    invitation: Any,
    *,
    account_id: uuid.UUID,
    name: str,
    email: str,
) -> Joined:
    """Use an invitation (already locked and checked) for an account."""
    now = datetime.now(UTC)
    joined = await join(
        uow,
        department_id=invitation.department_id,
        account_id=account_id,
        name=name,
        email=email,
        role=invitation.role,
        via="invitation",
        added_by=invitation.invited_by,
        invited_email=invitation.email,
        welcome=True,
    )
    await store_invitations.set_fields(
        uow.conn,
        invitation.id,
        status="accepted",
        accepted_at=now,
        account_id=account_id,
        closed_at=now,
    )
    uow.emit(
        InvitationAccepted(
            department_id=invitation.department_id,
            invitation_id=invitation.id,
            account_id=account_id,
            email=invitation.email,
        ),
        key=invitation.department_id,
    )
    return joined


def check_link(link: Any, email: str | None, now: datetime) -> str | None:
    """Why a registration link cannot be used now (None: it can)."""
    if link is None or not link.enabled:
        return "invalid"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    if email is not None and not domain_allowed(email, link.allowed_domains):
        return "domain"
    return None


async def complete_registration(
    uow: UnitOfWork, request: dict[str, Any], account_id: uuid.UUID
) -> Joined:
    """Identity made the account of someone who registered through a link: join them."""
    now = datetime.now(UTC)
    if request["via"] == "invitation":
        invitation = await store_invitations.by_token(uow.conn, request["token_hash"])
        if invitation is None:
            raise invitation_problem("invalid")
        refusal = invitation_refusal(invitation.status, invitation.expires_at, now)
        if refusal is not None:
            raise invitation_problem(refusal)
        return await accept_invitation(
            uow, invitation, account_id=account_id, name=request["name"], email=request["email"]
        )
    link = await store_invitations.link_by_token(uow.conn, request["token_hash"])
    link_refusal = check_link(link, request["email"], now)
    if link_refusal is not None or link is None:
        raise link_problem(link_refusal or "invalid")
    return await join(
        uow,
        department_id=link.department_id,
        account_id=account_id,
        name=request["name"],
        email=request["email"],
        role=link.role,
        via="registration_link",
        welcome=True,
    )
