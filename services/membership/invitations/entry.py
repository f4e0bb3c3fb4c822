"""Coming in through a link: accept an invitation, or join with the department's link.

Both links are doors into a department, and both are used the same way: a person
who is signed in walks through with their account; a person without one registers
while walking through. A door says whether it may be used, by whom, whether the
registrant must prove their address, and what walking through it does.

Registering only records the request: the HTTP answer is the same whatever happens
next (identity makes the account, takes over an unconfirmed one, or says the address
has an account), so nobody learns which addresses have one. An invitation is claimed
by the registration that uses it, in the same transaction that records it, so that
concurrent registrations through one invitation cannot each make an account: the
first claims it, the others are told it is used. ``registrations`` finishes (or ends)
the request when identity answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import LinkAddress
from prodigy_users.contracts.membership import InvitationAccepted
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.errors import DomainError, InvalidInput
from prodigy_users.runtime.passwords import require_strong
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import (
    AccountNotReady,
    EmailDomainNotAllowed,
    InvitationExpired,
    InvitationInvalid,
    InvitationRevoked,
    InvitationUsed,
    RegistrationLinkExpired,
    RegistrationLinkInvalid,
)
from ..members import store as member_store
from ..members.joining import Joined, join
from ..members.passwords import PasswordSeal
from ..members.requests import request_account
from ..rules import OPEN_STATUSES
from ..units import unit_of_work
from . import store
from .rules import invitation_refusal, link_refusal, must_confirm, token_hash

Via = Literal["invitation", "registration_link"]


@dataclass(frozen=True)
class Registration:
    """Someone registering while coming in: who they are."""

    name: str
    email: str
    password: str


@dataclass(frozen=True)
class Registered:
    """A registration recorded; identity is asked for the account.

    ``confirm_email``: the address must be proved (the person is told to check their
    email); otherwise the person registered with the invited address itself, and the
    operation ``operation_id`` tells when they have joined.
    """

    operation_id: uuid.UUID
    email: str
    confirm_email: bool


class Door(Protocol):
    """An invitation or a registration link, found by its token."""

    @property
    def department_id(self) -> uuid.UUID:
        """The department it lets people into."""
        ...

    def check(self, email: str, now: datetime) -> None:
        """Raise why the door cannot be used now by ``email``."""

    def needs_confirmation(self, email: str) -> bool:
        """Whether someone registering with ``email`` must prove they own it first."""
        ...

    async def claim(self, conn: AsyncConnection, operation_id: uuid.UUID) -> None:
        """Hold the door for the registration ``operation_id`` (``InvitationUsed`` if
        another registration holds it)."""

    async def let_in(self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str) -> Joined:
        """Make the account a member, and record that the door was used."""
        ...


_INVITATION_REFUSALS: dict[str, type[DomainError]] = {
    "used": InvitationUsed,
    "revoked": InvitationRevoked,
    "expired": InvitationExpired,
}


@dataclass(frozen=True)
class InvitationDoor:
    """An invitation (row locked): any account may accept it, once."""

    row: Any

    @property
    def department_id(self) -> uuid.UUID:
        """The inviting department."""
        department_id: uuid.UUID = self.row.department_id
        return department_id

    def check(self, email: str, now: datetime) -> None:
        """Accepted, revoked and expired invitations cannot be used (whoever you are)."""
        refusal = invitation_refusal(self.row.status, self.row.expires_at, now)
        if refusal is not None:
            raise _INVITATION_REFUSALS[refusal]()

    def needs_confirmation(self, email: str) -> bool:
        """The invited address needs no proof (its owner opened the link emailed to
        it); any other address does."""
        return must_confirm(email, str(self.row.email_normalised))

    async def claim(self, conn: AsyncConnection, operation_id: uuid.UUID) -> None:
        """One registration at a time: a claim held by an open registration refuses."""
        holder = self.row.claimed_by
        if holder is not None:
            held = await member_store.operation(conn, holder)
            if held is not None and held.status in OPEN_STATUSES:
                raise InvitationUsed()
        await store.set_fields(conn, self.row.id, claimed_by=operation_id)

    async def let_in(self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str) -> Joined:
        """Join with the invitation's role, and mark the invitation accepted (whoever
        held a claim on it: a signed-in person goes before a pending registration).
        An account whose email is not the invited address gets that address linked
        (identity's ``LinkAddress``)."""
        invitation = self.row
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
        await store.set_fields(
            uow.conn,
            invitation.id,
            status="accepted",
            accepted_at=now,
            account_id=account_id,
            closed_at=now,
            claimed_by=None,
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
        if email_key(str(invitation.email)) != email_key(email):
            # Opening the link emailed to the invited address proved the person receives
            # mail there: identity links it to the account they came in with (unless
            # another account holds it), so it finds them from now on.
            uow.emit(
                LinkAddress(
                    account_id=account_id,
                    email=invitation.email,
                    department_id=invitation.department_id,
                    invitation_id=invitation.id,
                ),
                key=account_id,
            )
        return joined


@dataclass(frozen=True)
class LinkDoor:
    """The department's registration link: anyone from the allowed domains, any time."""

    row: Any

    @property
    def department_id(self) -> uuid.UUID:
        """The link's department."""
        department_id: uuid.UUID = self.row.department_id
        return department_id

    def check(self, email: str, now: datetime) -> None:
        """Switched off, expired, or a domain not allowed."""
        refusal = link_refusal(
            enabled=self.row.enabled,
            expires_at=self.row.expires_at,
            allowed_domains=self.row.allowed_domains,
            email=email,
            now=now,
        )
        if refusal == "domain":
            raise EmailDomainNotAllowed()
        if refusal == "expired":
            raise RegistrationLinkExpired()
        if refusal is not None:
            raise RegistrationLinkInvalid()

    def needs_confirmation(self, email: str) -> bool:
        """A link invites no address in particular: every registrant proves theirs (the
        allowed domains are only worth something then)."""
        return must_confirm(email, None)

    async def claim(self, conn: AsyncConnection, operation_id: uuid.UUID) -> None:
        """Anyone may register through the link at the same time: nothing to hold."""

    async def let_in(self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str) -> Joined:
        """Join with the link's role."""
        return await join(
            uow,
            department_id=self.row.department_id,
            account_id=account_id,
            name=name,
            email=email,
            role=self.row.role,
            via="registration_link",
            welcome=True,
        )


async def find_door(conn: AsyncConnection, via: Via, hashed: str) -> Door:
    """The invitation (locked, so two accepts cannot both win) or link of a token."""
    if via == "invitation":
        invitation = await store.by_token(conn, hashed)
        if invitation is None:
            raise InvitationInvalid()
        return InvitationDoor(invitation)
    link = await store.link_by_token(conn, hashed)
    if link is None:
        raise RegistrationLinkInvalid()
    return LinkDoor(link)


class Entry:
    """Accepting invitations and joining through the registration link."""

    def __init__(self, engine: AsyncEngine, passwords: PasswordSeal) -> None:
        self.engine = engine
        self.passwords = passwords

    async def invited(self, token: str) -> tuple[str, str | None]:
        """The address an invitation that can still be used was sent to, and the name the
        admin pasted with it (what the registration form offers first). Refused as
        accepting it would be: unknown, used, revoked or expired."""
        async with self.engine.connect() as conn:
            row = await store.by_token(conn, token_hash(token))
        if row is None:
            raise InvitationInvalid()
        door = InvitationDoor(row)
        door.check(str(row.email), datetime.now(UTC))
        return str(row.email), row.name

    async def accept(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Registered:
        """Use an invitation: the signed-in account joins, or a new one registers."""
        return await self._enter("invitation", token, principal, registration)

    async def join_link(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Registered:
        """Join through the department's link: signed in, or registering."""
        return await self._enter("registration_link", token, principal, registration)

    async def _enter(
        self,
        via: Via,
        token: str,
        principal: Principal | None,
        registration: Registration | None,
    ) -> Joined | Registered:
        hashed = token_hash(token)
        if principal is not None:
            return await self._signed_in(via, hashed, principal)
        return await self._register(via, hashed, _required(registration))

    async def _signed_in(self, via: Via, hashed: str, principal: Principal) -> Joined:
        """The signed-in account walks through, as membership knows it.

        An account identity has not told us about yet (its ``AccountCreated`` is on its
        way) is asked to try again in a moment: its address is what the domains and the
        membership are decided on, and no stand-in may take its place.
        """
        async with unit_of_work(self.engine) as uow:
            door = await find_door(uow.conn, via, hashed)
            account = await member_store.account(uow.conn, principal.account_id)
            if account is None:
                raise AccountNotReady()
            door.check(str(account.email), datetime.now(UTC))
            joined = await door.let_in(
                uow, principal.account_id, str(account.name), str(account.email)
            )
            await uow.commit()
        return joined

    async def _register(self, via: Via, hashed: str, registration: Registration) -> Registered:
        """Check the door, claim it, record the request and ask identity for the account,
        in one transaction; the outcome follows identity's answer."""
        operation_id = uuid.uuid4()
        # A link that cannot be used is refused before the password is hashed; the hash
        # is made outside the transaction, so an invitation is not locked meanwhile.
        async with self.engine.connect() as conn:
            door = await find_door(conn, via, hashed)
            door.check(registration.email, datetime.now(UTC))
        sealed_password_hash = await self.passwords.sealed_hash(registration.password)
        async with unit_of_work(self.engine) as uow:
            door = await find_door(uow.conn, via, hashed)
            door.check(registration.email, datetime.now(UTC))
            confirm = door.needs_confirmation(registration.email)
            await door.claim(uow.conn, operation_id)
            await request_account(
                uow,
                operation_id=operation_id,
                kind="register",
                department_id=door.department_id,
                requested_by=None,
                name=registration.name,
                email=registration.email,
                role=None,
                sealed_password_hash=sealed_password_hash,
                extra={"via": via, "token_hash": hashed},
                confirm_email=confirm,
            )
            await uow.commit()
        return Registered(operation_id, registration.email, confirm)


def _required(registration: Registration | None) -> Registration:
    if registration is None:
        raise InvalidInput(
            "Sign in and send the request with your access token, or register with "
            "your name, email and a password.",
            errors=[{"field": "(body)", "message": "name, email and password required"}],
        )
    require_strong(registration.password, email=registration.email)
    return registration
