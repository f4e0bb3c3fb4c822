"""Invitations: invite pasted addresses, remind, revoke, list, and let them expire."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.membership import (
    InvitationExpired,
    InvitationLinkIssued,
    InvitationReminded,
    InvitationRevoked,
    MemberInvited,
    Role,
)
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.errors import InvalidInput
from prodigy_users.runtime.loops import keep_running, sleep_for
from prodigy_users.runtime.uow import UnitOfWork

from ..departments import store as department_store
from ..errors import (
    InvitationNotFound,
    InvitationNotPending,
    ReminderTooSoon,
)
from ..members import store as member_store
from ..settings import Settings
from ..units import unit_of_work
from . import store
from .rules import PastedAddress, invitation_refusal, parse_pasted, token_hash
from .tokens import LinkTokens


@dataclass(frozen=True)
class InviteResult:
    """What happened to one pasted address."""

    email: str
    outcome: str
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


class Invitations:
    """Invitation use cases: invite, remind, revoke, list, expire."""

    def __init__(self, engine: AsyncEngine, settings: Settings, tokens: LinkTokens) -> None:
        self.engine = engine
        self.settings = settings
        self.tokens = tokens

    # -- inviting --------------------------------------------------------------------

    async def invite(
        self,
        department_id: uuid.UUID,
        raw: str | Sequence[str],
        role: Role | None,
        admin: Principal,
        names: Mapping[str, str] | None = None,
    ) -> list[InviteResult]:
        """Invite every distinct pasted address; each gets an outcome. ``names`` (by
        normalised address: a bulk upload's Name column) give the invitations their
        names where the paste has none."""
        addresses = parse_pasted(raw)
        if names:
            addresses = [
                replace(a, name=a.name or names.get(email_key(a.email)))
                if a.error is None
                else a
                for a in addresses
            ]
        limit = self.settings.max_invitations_per_request
        valid = [a for a in addresses if a.error is None]
        if not addresses or len(valid) > limit:
            raise InvalidInput(
                f"Paste between 1 and {limit} addresses.",
                errors=[{"field": "emails", "message": f"between 1 and {limit} addresses"}],
            )
        for attempt in range(3):
            try:
                return await self._invite_once(department_id, addresses, valid, role, admin)
            except DBAPIError as exc:
                # Two admins pasting overlapping lists: PostgreSQL breaks the tie by
                # aborting one; run it again and it finds the other's invitations.
                if "deadlock" not in str(exc.orig) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _invite_once(
        self,
        department_id: uuid.UUID,
        addresses: list[PastedAddress],
        valid: list[PastedAddress],
        role: Role | None,
        admin: Principal,
    ) -> list[InviteResult]:
        now = datetime.now(UTC)
        async with unit_of_work(self.engine) as uow:
            department = await department_store.department(uow.conn, department_id)
            assert department is not None
            ttl = timedelta(
                seconds=department.invitation_ttl_s or self.settings.invitation_ttl_s
            )
            keys = [email_key(a.email) for a in valid]
            members = await member_store.current_members_by_email(uow.conn, department_id, keys)
            await self._expire(uow, department_id, keys, now)
            pending = await store.pending_for(uow.conn, department_id, keys)
            inviter = await self._inviter_name(uow, department_id, admin.account_id)
            outcomes: dict[str, InviteResult] = {}
            # Rows are written in one order (by address) whatever the paste's order,
            # so two overlapping pastes lock in the same order instead of deadlocking.
            for address in sorted(valid, key=lambda a: email_key(a.email)):
                key = email_key(address.email)
                if key in members:
                    outcomes[key] = InviteResult(address.email, "already_member")
                elif key in pending:
                    existing = pending[key]
                    await self._maybe_remind(uow, existing, admin.account_id, inviter, now)
                    outcomes[key] = InviteResult(address.email, "already_invited", existing.id)
                else:
                    outcomes[key] = await self._new_invitation(
                        uow, department_id, address, role, admin, inviter, now, ttl
                    )
            await uow.commit()
        return [
            InviteResult(a.email, "invalid", reason=a.error)
            if a.error is not None
            else outcomes[email_key(a.email)]
            for a in addresses
        ]

    async def _inviter_name(
        self, uow: UnitOfWork, department_id: uuid.UUID, account_id: uuid.UUID
    ) -> str | None:
        row = await member_store.membership(uow.conn, department_id, account_id)
        return str(row.name) if row is not None else None

    async def _new_invitation(
        self,
        uow: UnitOfWork,
        department_id: uuid.UUID,
        address: PastedAddress,
        role: Role | None,
        admin: Principal,
        inviter: str | None,
        now: datetime,
        ttl: timedelta,
    ) -> InviteResult:
        email, name = address.email, address.name
        invitation_id = uuid.uuid4()
        token = self.tokens.token("invitation", invitation_id)
        expires_at = now + ttl
        inserted = await store.insert_pending(
            uow.conn,
            id=invitation_id,
            department_id=department_id,
            email=email,
            email_normalised=email_key(email),
            role=role,
            token_hash=token_hash(token),
            invited_by=admin.account_id,
            created_at=now,
            expires_at=expires_at,
            last_sent_at=now,
            name=name,
        )
        if not inserted:
            # Another admin invited the address a moment ago: theirs stands.
            raced = await store.pending_for(
                uow.conn, department_id, [email_key(email)]
            )
            existing = next(iter(raced.values()), None)
            return InviteResult(email, "already_invited", existing.id if existing else None)
        uow.emit(
            MemberInvited(
                department_id=department_id,
                invitation_id=invitation_id,
                email=email,
                role=role or "member",
                expires_at=expires_at,
                invited_by=admin.account_id,
                name=name,
            ),
            key=department_id,
        )
        uow.emit(
            InvitationLinkIssued(
                department_id=department_id,
                invitation_id=invitation_id,
                email=email,
                role=role or "member",
                sealed_token=self.tokens.sealed(token),
                expires_at=expires_at,
                invited_by_name=inviter,
                name=name,
            ),
            key=department_id,
        )
        return InviteResult(email, "invited", invitation_id)

    async def _maybe_remind(
        self,
        uow: UnitOfWork,
        invitation: Any,
        admin_id: uuid.UUID | None,
        inviter: str | None,
        now: datetime,
    ) -> bool:
        interval = timedelta(seconds=self.settings.reminder_interval_s)
        if invitation.last_sent_at > now - interval:
            return False
        await self._send_reminder(uow, invitation, admin_id, inviter, now)
        return True

    async def _send_reminder(
        self,
        uow: UnitOfWork,
        invitation: Any,
        admin_id: uuid.UUID | None,
        inviter: str | None,
        now: datetime,
    ) -> None:
        await store.set_fields(uow.conn, invitation.id, last_sent_at=now)
        uow.emit(
            InvitationReminded(
                department_id=invitation.department_id,
                invitation_id=invitation.id,
                email=invitation.email,
                reminded_by=admin_id,
            ),
            key=invitation.department_id,
        )
        uow.emit(
            InvitationLinkIssued(
                department_id=invitation.department_id,
                invitation_id=invitation.id,
                email=invitation.email,
                role=invitation.role or "member",
                sealed_token=self.tokens.sealed(self.tokens.token("invitation", invitation.id)),
                expires_at=invitation.expires_at,
                reminder=True,
                invited_by_name=inviter,
                name=invitation.name,
            ),
            key=invitation.department_id,
        )

    async def remind(
        self, department_id: uuid.UUID, invitation_id: uuid.UUID, admin: Principal
    ) -> None:
        """Send the invitation again (at most once an hour)."""
        now = datetime.now(UTC)
        async with unit_of_work(self.engine) as uow:
            invitation = await self._pending_invitation(uow, department_id, invitation_id, now)
            interval = timedelta(seconds=self.settings.reminder_interval_s)
            wait = invitation.last_sent_at + interval - now
            if wait > timedelta(0):
                raise ReminderTooSoon(retry_after=int(wait.total_seconds()) + 1)
            inviter = await self._inviter_name(uow, department_id, admin.account_id)
            await self._send_reminder(uow, invitation, admin.account_id, inviter, now)
            await uow.commit()

    async def revoke(
        self, department_id: uuid.UUID, invitation_id: uuid.UUID, admin: Principal
    ) -> None:
        """Withdraw a pending invitation: its link stops working."""
        now = datetime.now(UTC)
        async with unit_of_work(self.engine) as uow:
            invitation = await self._pending_invitation(uow, department_id, invitation_id, now)
            await store.set_fields(
                uow.conn, invitation.id, status="revoked", closed_at=now
            )
            uow.emit(
                InvitationRevoked(
                    department_id=department_id,
                    invitation_id=invitation.id,
                    email=invitation.email,
                    revoked_by=admin.account_id,
                ),
                key=department_id,
            )
            await uow.commit()

    async def _pending_invitation(
        self, uow: UnitOfWork, department_id: uuid.UUID, invitation_id: uuid.UUID, now: datetime
    ) -> Any:
        invitation = await store.by_id(uow.conn, department_id, invitation_id)
        if invitation is None:
            raise InvitationNotFound()
        refusal = invitation_refusal(invitation.status, invitation.expires_at, now)
        if refusal is not None:
            raise InvitationNotPending({"used": "accepted"}.get(refusal, refusal))
        return invitation

    async def listing(self, department_id: uuid.UUID, status: str | None) -> list[Any]:
        """The department's invitations, newest first."""
        async with self.engine.connect() as conn:
            return await store.listing(conn, department_id, status, datetime.now(UTC))

    # -- expiry -------------------------------------------------------------------------

    async def _expire(
        self,
        uow: UnitOfWork,
        department_id: uuid.UUID | None,
        keys: list[str] | None,
        now: datetime,
    ) -> int:
        """Mark lapsed invitations expired (all, or a department's addresses); how many."""
        rows = await store.lapsed(uow.conn, now, department_id=department_id, normalised=keys)
        for row in rows:
            await store.set_fields(uow.conn, row.id, status="expired", closed_at=now)
            uow.emit(
                InvitationExpired(
                    department_id=row.department_id, invitation_id=row.id, email=row.email
                ),
                key=row.department_id,
            )
        return len(rows)

    async def sweep(self) -> bool:
        """Mark lapsed invitations expired and say so on the bus; True if any were."""
        async with unit_of_work(self.engine) as uow:
            if not await self._expire(uow, None, None, datetime.now(UTC)):
                return False
            await uow.commit()
        return True

    async def sweep_forever(self) -> None:
        """``sweep`` for the life of the service, every ``invitation_sweep_interval_s``."""
        interval = self.settings.invitation_sweep_interval_s
        await keep_running(self.sweep, what="invitation sweep", idle=lambda: sleep_for(interval))
