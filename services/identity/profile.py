"""A person's name and login email, which belong to the account (one per person, for
life) and so show in every department: the person edits their name, an admin of one
of their departments corrects it (membership's ``RenameAccount``), and the person
moves their login email to an address they prove with a link sent there.

Every change is announced once done, with its before and after, by ``AccountUpdated``
on the public events topic; an email change's request is not (it may name an address
another account holds), only its link goes out, sealed, to notifications.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountUpdated,
    Change,
    EmailChangeConfirmationIssued,
    RenameAccount,
)
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.passwords import DUMMY_HASH, verify_password
from prodigy_users.runtime.uow import UnitOfWork

from . import address_tokens, store
from .confirmations import Confirmations
from .domain import (
    CHANGE_EMAIL,
    email_change_refusal,
    name_change,
    normalise_email,
)
from .errors import (
    AccountNotFound,
    EmailTaken,
    SameEmail,
    WrongCurrentPassword,
)
from .links import Links

log = get_logger(__name__)


async def rename(
    uow: UnitOfWork,
    account_id: uuid.UUID,
    name: str,
    *,
    changed_by: uuid.UUID | None,
    department_id: uuid.UUID | None = None,
) -> store.Account:
    """Set the account's name in ``uow`` and announce it (``AccountNotFound``); the
    same name again changes and announces nothing. The account as it is now."""
    account = await store.account_by_id(uow.conn, account_id, lock=True)
    if account is None:
        raise AccountNotFound()
    change = name_change(account.name, name)
    if change is None:
        return account
    await store.set_name(uow.conn, account.id, name)
    uow.emit(
        AccountUpdated(
            account_id=account.id,
            name=Change(old=change[0], new=change[1]),
            changed_by=changed_by,
            department_id=department_id,
            occurred_at=datetime.now(UTC),
        ),
        key=account.id,
    )
    return replace(account, name=name)


async def rename_account(uow: UnitOfWork, env: RawEnvelope, cmd: RenameAccount) -> None:
    """Handle ``RenameAccount``: an admin corrected a member's name (membership checked
    that they may). An account that no longer exists is logged and skipped."""
    try:
        await rename(
            uow,
            cmd.account_id,
            cmd.name,
            changed_by=cmd.changed_by,
            department_id=cmd.department_id,
        )
    except AccountNotFound:
        log.warning("rename of an unknown account skipped", account_id=str(cmd.account_id))


class Profiles:
    """The person's own name and login email; built once the runtime's engine exists."""

    def __init__(
        self,
        engine: AsyncEngine,
        links: Links,
        confirmations: Confirmations,
        email_change_ttl: timedelta,
    ) -> None:
        self.engine = engine
        self.links = links
        self.confirmations = confirmations
        self.email_change_ttl = email_change_ttl

    def uow(self) -> UnitOfWork:
        """A unit of work on identity's database."""
        return UnitOfWork(self.engine, "identity")

    async def me(self, account_id: uuid.UUID) -> store.Account:
        """The caller's own account (``AccountNotFound`` if the token names none)."""
        async with self.engine.connect() as conn:
            account = await store.account_by_id(conn, account_id)
        if account is None:
            raise AccountNotFound("The token's account does not exist.")
        return account

    async def rename_me(self, account_id: uuid.UUID, name: str) -> store.Account:
        """The caller sets their own name (``AccountNotFound`` if the token names none)."""
        async with self.uow() as uow:
            account = await rename(uow, account_id, name, changed_by=account_id)
            await uow.commit()
        return account

    async def request_email_change(
        self, account_id: uuid.UUID, new_email: str, password: str
    ) -> None:
        """Send a link to ``new_email``; opening it makes it the login email.

        The current password is asked for: a token left signed in on a shared
        computer must not be enough to take the account away from its owner.
        ``SameEmail`` for the current address; whether another account holds the
        address is not said here (the link says so when opened), so the answer cannot
        be used to find out who has an account. Earlier links of the account stop
        working.
        """
        async with self.uow() as uow:
            account = await store.account_by_id(uow.conn, account_id, lock=True)
            if account is None:
                raise AccountNotFound("The token's account does not exist.")
            stored = account.password_hash or DUMMY_HASH
            matches = await asyncio.to_thread(verify_password, stored, password)
            if not matches or account.password_hash is None:
                raise WrongCurrentPassword()
            if email_change_refusal(account.email, new_email) == "same":
                raise SameEmail()
            token, expires_at = await address_tokens.issue(
                uow, account.id, CHANGE_EMAIL, new_email, datetime.now(UTC), self.email_change_ttl
            )
            uow.emit(
                EmailChangeConfirmationIssued(
                    account_id=account.id,
                    email=new_email,
                    name=account.name,
                    sealed_token=self.links.sealed(token),
                    expires_at=expires_at,
                ),
                key=account.id,
            )
            await uow.commit()

    async def confirm_email_change(self, token: str) -> store.Account:
        """Use an email-change link once: the login email becomes the address it was
        sent to, and ``AccountUpdated`` says so (notifications tells the old address).

        ``LinkInvalid``, ``LinkUsed``, ``LinkExpired``; ``EmailTaken`` if another
        account holds the address by now (checked here, and by the unique index when
        two changes race): the link is spent either way.
        """
        async with self.uow() as uow:
            now = datetime.now(UTC)
            account_id, new_email = await address_tokens.spend(uow, token, CHANGE_EMAIL, now)
            account = await store.account_by_id(uow.conn, account_id, lock=True)
            assert account is not None
            normalised = normalise_email(new_email)
            await self._free_from_registration(uow, normalised, account.id)
            taken = await store.address_taken(uow.conn, normalised, by_other_than=account.id)
            if taken or not await store.set_login_email(
                uow.conn, account.id, new_email, normalised
            ):
                # The link is spent: commit that, then say why nothing changed.
                await uow.commit()
                raise EmailTaken()
            uow.emit(
                AccountUpdated(
                    account_id=account.id,
                    email=Change(old=account.email, new=new_email),
                    changed_by=account.id,
                    occurred_at=now,
                ),
                key=account.id,
            )
            await uow.commit()
        return replace(account, email=new_email)

    async def _free_from_registration(
        self, uow: UnitOfWork, normalised: str, account_id: uuid.UUID
    ) -> None:
        """An address held only by a registration nobody confirmed is free, as for every
        other request (``commands.create_account``): that registration lapses
        (``superseded``) and its account, which nobody outside identity ever heard of,
        is deleted, so nobody can block a change by registering the address first.
        Opening the link proves this person receives mail there."""
        holder = await store.account_by_email(uow.conn, normalised, lock=True)
        if holder is None or holder.id == account_id or holder.confirmed:
            return
        await self.confirmations.lapse(uow, holder, "superseded")
        await store.delete_accounts(uow.conn, [holder.id])
