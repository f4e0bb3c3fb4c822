"""Invitations and the self-registration link: invite, remind, revoke, accept, join."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from prodigy_users.contracts.membership import (
    InvitationExpired,
    InvitationLinkIssued,
    InvitationReminded,
    InvitationRevoked,
    MemberInvited,
    RegistrationLinkChanged,
    Role,
)
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.keys import seal
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.passwords import hash_password, require_strong
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store, store_invitations
from .domain import (
    PastedAddress,
    derive_token,
    invitation_refusal,
    normalise_email,
    parse_pasted,
    token_hash,
)
from .joining import Joined, join
from .registration import accept_invitation, check_link, invitation_problem, link_problem
from .service import Membership, Operation

log = get_logger(__name__)


@dataclass(frozen=True)
class InviteResult:
    """What happened to one pasted address."""

    email: str
    outcome: str
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Registration:
    """Someone registering while accepting: who they are."""

    name: str
    email: str
    password: str


def not_pending(status: str) -> Problem:
    """409 for acting on an invitation that is no longer pending."""
    return Problem(
        409, "invitation-not-pending", "Invitation not pending", f"This invitation is {status}."
    )


class Invitations:
    """The use cases; one per process, built by ``app.spec``."""

    def __init__(self, core: Membership) -> None:
        self.core = core
        settings = core.settings
        self._secret = (
            Path(settings.link_secret_path).read_bytes() if settings.link_secret_path else None
        )
        self._seal_key = (
            Path(settings.seal_public_key_path).read_bytes()
            if settings.seal_public_key_path
            else None
        )

    # -- tokens ----------------------------------------------------------------------

    def _token(self, kind: str, ident: uuid.UUID) -> str:
        if self._secret is None:
            raise RuntimeError("PRODIGY_LINK_SECRET_PATH is not set")
        return derive_token(self._secret, kind, ident)

    def _sealed(self, token: str) -> str:
        if self._seal_key is None:
            raise RuntimeError("PRODIGY_SEAL_PUBLIC_KEY_PATH is not set")
        return seal(self._seal_key, token)

    def link_url(self, link_id: uuid.UUID) -> str:
        """The self-registration URL people open."""
        return f"{self.core.settings.app_base_url.rstrip('/')}/join/{self._token('link', link_id)}"

    # -- inviting --------------------------------------------------------------------

    async def invite(
        self,
        department_id: uuid.UUID,
        raw: str | Sequence[str],
        role: Role | None,
        admin: Principal,
    ) -> list[InviteResult]:
        """Invite every distinct pasted address; each gets an outcome."""
        addresses = parse_pasted(raw)
        limit = self.core.settings.max_invitations_per_request
        valid = [a for a in addresses if a.error is None]
        if not addresses or len(valid) > limit:
            raise Problem(
                422,
                "validation",
                "Invalid request",
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
        async with self.core.uow() as uow:
            department = await store.department(uow.conn, department_id)
            assert department is not None
            ttl = timedelta(
                seconds=department.invitation_ttl_s or self.core.settings.invitation_ttl_s
            )
            keys = [normalise_email(a.email) for a in valid]
            members = await store.current_member_emails(uow.conn, department_id, keys)
            await self._expire(uow, department_id, keys, now)
            pending = await store_invitations.pending_for(uow.conn, department_id, keys)
            inviter = await self._inviter_name(uow, department_id, admin.account_id)
            outcomes: dict[str, InviteResult] = {}
            # Rows are written in one order (by address) whatever the paste's order,
            # so two overlapping pastes lock in the same order instead of deadlocking.
            for address in sorted(valid, key=lambda a: normalise_email(a.email)):
                key = normalise_email(address.email)
                if key in members:
                    outcomes[key] = InviteResult(address.email, "already_member")
                elif key in pending:
                    existing = pending[key]
                    await self._maybe_remind(uow, existing, admin.account_id, inviter, now)
                    outcomes[key] = InviteResult(address.email, "already_invited", existing.id)
                else:
                    outcomes[key] = await self._new_invitation(
                        uow, department_id, address.email, role, admin, inviter, now, ttl
                    )
            await uow.commit()
        return [
            InviteResult(a.email, "invalid", reason=a.error)
            if a.error is not None
            else outcomes[normalise_email(a.email)]
            for a in addresses
        ]

    async def _inviter_name(
        self, uow: UnitOfWork, department_id: uuid.UUID, account_id: uuid.UUID
    ) -> str | None:
        row = await store.membership(uow.conn, department_id, account_id)
        return str(row.name) if row is not None else None

    async def _new_invitation(
        self,
        uow: UnitOfWork,
        department_id: uuid.UUID,
        email: str,
        role: Role | None,
        admin: Principal,
        inviter: str | None,
        now: datetime,
        ttl: timedelta,
    ) -> InviteResult:
        invitation_id = uuid.uuid4()
        token = self._token("invitation", invitation_id)
        expires_at = now + ttl
        inserted = await store_invitations.insert_pending(
            uow.conn,
            id=invitation_id,
            department_id=department_id,
            email=email,
            email_normalised=normalise_email(email),
            role=role,
            token_hash=token_hash(token),
            invited_by=admin.account_id,
            created_at=now,
            expires_at=expires_at,
            last_sent_at=now,
        )
        if not inserted:
            # Another admin invited the address a moment ago: theirs stands.
            raced = await store_invitations.pending_for(
                uow.conn, department_id, [normalise_email(email)]
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
            ),
            key=department_id,
        )
        uow.emit(
            InvitationLinkIssued(
                department_id=department_id,
                invitation_id=invitation_id,
                email=email,
                role=role or "member",
                sealed_token=self._sealed(token),
                expires_at=expires_at,
                invited_by_name=inviter,
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
        interval = timedelta(seconds=self.core.settings.reminder_interval_s)
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
        await store_invitations.set_fields(uow.conn, invitation.id, last_sent_at=now)
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
                sealed_token=self._sealed(self._token("invitation", invitation.id)),
                expires_at=invitation.expires_at,
                reminder=True,
                invited_by_name=inviter,
            ),
            key=invitation.department_id,
        )

    async def remind(
        self, department_id: uuid.UUID, invitation_id: uuid.UUID, admin: Principal
    ) -> None:
        """Send the invitation again (at most once an hour)."""
        now = datetime.now(UTC)
        async with self.core.uow() as uow:
            invitation = await self._pending_invitation(uow, department_id, invitation_id, now)
            interval = timedelta(seconds=self.core.settings.reminder_interval_s)
            wait = invitation.last_sent_at + interval - now
            if wait > timedelta(0):
                raise Problem(
                    429,
                    "reminder-too-soon",
                    "Reminder sent recently",
                    "This invitation was sent less than an hour ago; try again later.",
                    headers={"Retry-After": str(int(wait.total_seconds()) + 1)},
                )
            inviter = await self._inviter_name(uow, department_id, admin.account_id)
            await self._send_reminder(uow, invitation, admin.account_id, inviter, now)
            await uow.commit()

    async def revoke(
        self, department_id: uuid.UUID, invitation_id: uuid.UUID, admin: Principal
    ) -> None:
        """Withdraw a pending invitation: its link stops working."""
        now = datetime.now(UTC)
        async with self.core.uow() as uow:
            invitation = await self._pending_invitation(uow, department_id, invitation_id, now)
            await store_invitations.set_fields(
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
        invitation = await store_invitations.by_id(uow.conn, department_id, invitation_id)
        if invitation is None:
            raise Problem(404, "invitation-not-found", "Unknown invitation", "No such invitation.")
        refusal = invitation_refusal(invitation.status, invitation.expires_at, now)
        if refusal is not None:
            raise not_pending({"used": "accepted"}.get(refusal, refusal))
        return invitation

    async def listing(self, department_id: uuid.UUID, status: str | None) -> list[Any]:
        """The department's invitations, newest first."""
        async with self.core.engine.connect() as conn:
            return await store_invitations.listing(conn, department_id, status, datetime.now(UTC))

    # -- expiry -------------------------------------------------------------------------

    async def _expire(
        self,
        uow: UnitOfWork,
        department_id: uuid.UUID | None,
        keys: list[str] | None,
        now: datetime,
    ) -> int:
        rows = await store_invitations.lapsed(uow.conn, now)
        count = 0
        for row in rows:
            if department_id is not None and (
                row.department_id != department_id or (keys and row.email_normalised not in keys)
            ):
                continue
            await store_invitations.set_fields(uow.conn, row.id, status="expired", closed_at=now)
            uow.emit(
                InvitationExpired(
                    department_id=row.department_id, invitation_id=row.id, email=row.email
                ),
                key=row.department_id,
            )
            count += 1
        return count

    async def sweep_forever(self) -> None:
        """Mark lapsed invitations expired (and say so on the bus), periodically."""
        while True:
            try:
                async with self.core.uow() as uow:
                    if await self._expire(uow, None, None, datetime.now(UTC)):
                        await uow.commit()
            except Exception as exc:
                log.warning("invitation sweep failed", error=repr(exc))
            await asyncio.sleep(self.core.settings.invitation_sweep_interval_s)

    # -- accepting ----------------------------------------------------------------------

    async def accept(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Operation:
        """Use an invitation: the signed-in account joins, or a new one registers and joins."""
        hashed = token_hash(token)
        now = datetime.now(UTC)
        if principal is not None:
            async with self.core.uow() as uow:
                invitation = await self._usable_invitation(uow, hashed, now)
                name, email = await self._profile(uow, principal, invitation.email)
                joined = await accept_invitation(
                    uow, invitation, account_id=principal.account_id, name=name, email=email
                )
                await uow.commit()
            return joined
        registration = self._require_registration(registration)
        async with self.core.engine.connect() as conn:
            invitation = await store_invitations.by_token(conn, hashed)
            self._check_invitation(invitation, now)
        assert invitation is not None
        return await self.core.register(
            department_id=invitation.department_id,
            name=registration.name,
            email=registration.email,
            password_hash=await asyncio.to_thread(hash_password, registration.password),
            via="invitation",
            token_hash=hashed,
        )

    async def _usable_invitation(self, uow: UnitOfWork, hashed: str, now: datetime) -> Any:
        invitation = await store_invitations.by_token(uow.conn, hashed)
        self._check_invitation(invitation, now)
        return invitation

    @staticmethod
    def _check_invitation(invitation: Any, now: datetime) -> None:
        if invitation is None:
            raise invitation_problem("invalid")
        refusal = invitation_refusal(invitation.status, invitation.expires_at, now)
        if refusal is not None:
            raise invitation_problem(refusal)

    @staticmethod
    def _require_registration(registration: Registration | None) -> Registration:
        if registration is None:
            raise Problem(
                422,
                "validation",
                "Invalid request",
                "Sign in and send the request with your access token, or register with "
                "your name, email and a password.",
                errors=[{"field": "(body)", "message": "name, email and password required"}],
            )
        require_strong(registration.password, email=registration.email)
        return registration

    async def _profile(
        self, uow: UnitOfWork, principal: Principal, fallback_email: str
    ) -> tuple[str, str]:
        """Name and email of a signed-in account, from identity's events."""
        account = await store.account(uow.conn, principal.account_id)
        if account is not None:
            return str(account.name), str(account.email)
        # Identity's event has not reached us yet: the invited address stands in.
        return fallback_email.split("@", 1)[0], fallback_email

    # -- the self-registration link -------------------------------------------------------

    async def link(self, department_id: uuid.UUID) -> Any:
        """The department's link row (None if never made)."""
        async with self.core.engine.connect() as conn:
            return await store_invitations.link(conn, department_id)

    async def rotate_link(
        self,
        department_id: uuid.UUID,
        role: Role,
        expires_at: datetime | None,
        allowed_domains: list[str],
    ) -> Any:
        """A new link; the old one stops working at once."""
        link_id = uuid.uuid4()
        now = datetime.now(UTC)
        async with self.core.uow() as uow:
            await store_invitations.put_link(
                uow.conn,
                department_id,
                link_id=link_id,
                token_hash=token_hash(self._token("link", link_id)),
                role=role,
                expires_at=expires_at,
                allowed_domains=allowed_domains,
                enabled=True,
                created_at=now,
            )
            uow.emit(
                RegistrationLinkChanged(
                    department_id=department_id,
                    enabled=True,
                    role=role,
                    expires_at=expires_at,
                    allowed_domains=allowed_domains,
                ),
                key=department_id,
            )
            await uow.commit()
        return await self.link(department_id)

    async def disable_link(self, department_id: uuid.UUID) -> None:
        """Switch self-registration off."""
        async with self.core.uow() as uow:
            if await store_invitations.disable_link(uow.conn, department_id):
                uow.emit(
                    RegistrationLinkChanged(department_id=department_id, enabled=False),
                    key=department_id,
                )
            await uow.commit()

    async def join_link(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Operation:
        """Join through the department's link: signed in, or registering."""
        hashed = token_hash(token)
        now = datetime.now(UTC)
        if principal is not None:
            async with self.core.uow() as uow:
                link = await store_invitations.link_by_token(uow.conn, hashed)
                account = await store.account(uow.conn, principal.account_id)
                email = str(account.email) if account is not None else None
                refusal = check_link(link, email, now)
                if refusal is not None or link is None:
                    raise link_problem(refusal or "invalid")
                name, email = await self._profile(uow, principal, email or "unknown@invalid")
                joined = await join(
                    uow,
                    department_id=link.department_id,
                    account_id=principal.account_id,
                    name=name,
                    email=email,
                    role=link.role,
                    via="registration_link",
                    welcome=True,
                )
                await uow.commit()
            return joined
        registration = self._require_registration(registration)
        async with self.core.engine.connect() as conn:
            link = await store_invitations.link_by_token(conn, hashed)
        refusal = check_link(link, registration.email, now)
        if refusal is not None or link is None:
            raise link_problem(refusal or "invalid")
        return await self.core.register(
            department_id=link.department_id,
            name=registration.name,
            email=registration.email,
            password_hash=await asyncio.to_thread(hash_password, registration.password),
            via="registration_link",
            token_hash=hashed,
        )
