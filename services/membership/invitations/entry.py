"""Coming in through a link: accept an invitation, or join with the department's link.

Both links are doors into a department, and both are used the same way: a person
who is signed in walks through with their account; a person without one registers
while walking through (identity makes the account, and the join completes with
identity's answer). A door says whether it may be used, by whom, and what walking
through it does.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.membership import InvitationAccepted
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.errors import DomainError, InvalidInput
from prodigy_users.runtime.passwords import hash_password, require_strong
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import (
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
from ..members.requests import Operation, Operations, request_account
from ..units import unit_of_work
from . import store
from .rules import invitation_refusal, link_refusal, token_hash

Via = Literal["invitation", "registration_link"]


@dataclass(frozen=True)
class Registration:
    """Someone registering while coming in: who they are."""

    name: str
    email: str
    password: str


class Door(Protocol):
    """An invitation or a registration link, found by its token."""

    @property
    def department_id(self) -> uuid.UUID:
        """The department it lets people into."""
        ...

    @property
    def fallback_email(self) -> str:
        """The address a signed-in account goes by if identity's event about it has not
        reached membership yet."""
        ...

    def check(self, email: str | None, now: datetime) -> None:
        """Raise why the door cannot be used now by ``email`` (None: not known)."""

    async def let_in(
        self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str
    ) -> Joined:
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

    @property
    def fallback_email(self) -> str:
        """The invited address."""
        return str(self.row.email)

    def check(self, email: str | None, now: datetime) -> None:
        """Accepted, revoked and expired invitations cannot be used (whoever you are)."""
        refusal = invitation_refusal(self.row.status, self.row.expires_at, now)
        if refusal is not None:
            raise _INVITATION_REFUSALS[refusal]()

    async def let_in(
        self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str
    ) -> Joined:
        """Join with the invitation's role, and mark the invitation accepted."""
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


@dataclass(frozen=True)
class LinkDoor:
    """The department's registration link: anyone from the allowed domains, any time."""

    row: Any

    @property
    def department_id(self) -> uuid.UUID:
        """The link's department."""
        department_id: uuid.UUID = self.row.department_id
        return department_id

    @property
    def fallback_email(self) -> str:
        """A link invites no address in particular."""
        return "unknown@invalid"

    def check(self, email: str | None, now: datetime) -> None:
        """Switched off, expired, or (when the address is known) a domain not allowed."""
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

    async def let_in(
        self, uow: UnitOfWork, account_id: uuid.UUID, name: str, email: str
    ) -> Joined:
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


async def complete_registration(uow: UnitOfWork, operation: Any, account_id: uuid.UUID) -> Joined:
    """Identity made the account of someone who registered at a door: let them in."""
    request = operation.request
    door = await find_door(uow.conn, request["via"], request["token_hash"])
    door.check(request["email"], datetime.now(UTC))
    return await door.let_in(uow, account_id, request["name"], request["email"])


class Entry:
    """Accepting invitations and joining through the registration link."""

    def __init__(self, engine: AsyncEngine, operations: Operations) -> None:
        self.engine = engine
        self.operations = operations

    async def accept(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Operation:
        """Use an invitation: the signed-in account joins, or a new one registers and joins."""
        return await self._enter("invitation", token, principal, registration)

    async def join_link(
        self, token: str, principal: Principal | None, registration: Registration | None
    ) -> Joined | Operation:
        """Join through the department's link: signed in, or registering."""
        return await self._enter("registration_link", token, principal, registration)

    async def _enter(
        self,
        via: Via,
        token: str,
        principal: Principal | None,
        registration: Registration | None,
    ) -> Joined | Operation:
        hashed = token_hash(token)
        now = datetime.now(UTC)
        if principal is not None:
            async with unit_of_work(self.engine) as uow:
                door = await find_door(uow.conn, via, hashed)
                account = await member_store.account(uow.conn, principal.account_id)
                door.check(str(account.email) if account is not None else None, now)
                if account is not None:
                    name, email = str(account.name), str(account.email)
                else:
                    # Identity's event has not reached us yet: the door's address stands in.
                    email = door.fallback_email
                    name = email.split("@", 1)[0]
                joined = await door.let_in(uow, principal.account_id, name, email)
                await uow.commit()
            return joined
        registration = _required(registration)
        async with self.engine.connect() as conn:
            door = await find_door(conn, via, hashed)
        door.check(registration.email, now)
        return await self._register(door.department_id, registration, via, hashed)

    async def _register(
        self, department_id: uuid.UUID, registration: Registration, via: Via, hashed: str
    ) -> Operation:
        """Ask identity for the account; the join follows its answer."""
        operation_id = uuid.uuid4()
        password_hash = await asyncio.to_thread(hash_password, registration.password)
        async with unit_of_work(self.engine) as uow:
            await request_account(
                uow,
                operation_id=operation_id,
                kind="register",
                department_id=department_id,
                requested_by=None,
                name=registration.name,
                email=registration.email,
                role=None,
                password_hash=password_hash,
                extra={"via": via, "token_hash": hashed},
            )
            await uow.commit()
        return await self.operations.wait_for(operation_id)


def _required(registration: Registration | None) -> Registration:
    if registration is None:
        raise InvalidInput(
            "Sign in and send the request with your access token, or register with "
            "your name, email and a password.",
            errors=[{"field": "(body)", "message": "name, email and password required"}],
        )
    require_strong(registration.password, email=registration.email)
    return registration
