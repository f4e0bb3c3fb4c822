"""What identity does for the commands membership sends one at a time (create an account,
one per email, or a rejection; unconfirmed for a registration that must prove its
address; issue an admin's password reset), and for the public reset requests it
recorded itself.

Each runs in the consumer's unit of work; batches of accounts are ``batch``'s. Every
reset email, whoever asked, counts against one cap per account
(``domain.MAX_RESETS_PER_WINDOW`` an hour): the rest are dropped, and the caller was
answered ``202`` long before.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountCreated,
    AccountCreationRejected,
    CreateAccount,
    IssuePasswordReset,
    PasswordChanged,
    PasswordResetRequested,
)
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .confirmations import Confirmations
from .domain import RESET_REQUEST_MAX_AGE, RESET_WINDOW, normalise_email, reset_allowed
from .links import Links
from .passwords import SealedPasswords

log = get_logger(__name__)


class Commands:
    """Handles ``CreateAccount`` and ``IssuePasswordReset``; built once by ``app.spec``."""

    def __init__(
        self, links: Links, confirmations: Confirmations, passwords: SealedPasswords
    ) -> None:
        self.links = links
        self.confirmations = confirmations
        self.passwords = passwords

    async def create_account(self, uow: UnitOfWork, env: RawEnvelope, cmd: CreateAccount) -> None:
        """Handle ``CreateAccount``: one account per email, or a rejection.

        With a sealed password hash (the person registered with a password) the account
        starts with it and no set-password email goes out; without one, the person
        is emailed a set-password link. With ``confirm_email`` the account starts
        unconfirmed and the address gets a confirmation link instead.

        An address whose account is unconfirmed is free: this request takes that
        account over (the requests that waited for it lapse), so nobody can hold an
        address they do not own by registering it first.
        """
        normalised = normalise_email(cmd.email)
        password_hash = self.passwords.open(cmd)
        now = datetime.now(UTC)
        confirmed_at = None if cmd.confirm_email else now
        # The address may be an account's login email or one linked to it.
        account = await store.account_holding(uow.conn, normalised, lock=True)
        if account is None:
            account_id = uuid.uuid4()
            inserted = await store.insert_account(
                uow.conn,
                account_id,
                cmd.email,
                normalised,
                cmd.name,
                password_hash=password_hash,
                password_set_at=now,
                confirmed_at=confirmed_at,
            )
            if inserted:
                made = store.Account(account_id, cmd.email, cmd.name, password_hash, confirmed_at)
                await self._made(uow, cmd, made, now)
                return
            # A batch or a link took the address a moment ago: it is that account's now.
            account = await store.account_holding(uow.conn, normalised, lock=True)
            if account is None:
                raise RuntimeError("an address was neither inserted nor found; retried")
        if account.confirmed:
            uow.emit(
                AccountCreationRejected(
                    request_id=cmd.request_id,
                    email=cmd.email,
                    reason="account_exists",
                    department_id=cmd.department_id,
                    existing_account_id=account.id,
                ),
                key=cmd.request_id,
            )
            return
        await self.confirmations.lapse(uow, account, "superseded", keep=cmd.request_id)
        await store.take_over(
            uow.conn,
            account.id,
            email=cmd.email,
            name=cmd.name,
            password_hash=password_hash,
            confirmed_at=confirmed_at,
            now=now,
        )
        taken = store.Account(account.id, cmd.email, cmd.name, password_hash, confirmed_at)
        await self._made(uow, cmd, taken, now)

    async def _made(
        self, uow: UnitOfWork, cmd: CreateAccount, account: store.Account, now: datetime
    ) -> None:
        """The request has its account: announce it, or wait for its confirmation."""
        if not account.confirmed:
            await self.confirmations.await_confirmation(
                uow, account, request_id=cmd.request_id, department_id=cmd.department_id
            )
            return
        uow.emit(
            AccountCreated(
                account_id=account.id,
                email=cmd.email,
                name=cmd.name,
                request_id=cmd.request_id,
                department_id=cmd.department_id,
            ),
            key=account.id,
        )
        if account.password_hash is not None:
            uow.emit(PasswordChanged(account_id=account.id, changed_at=now), key=account.id)
            return
        await self.links.issue(uow, account, "welcome", cmd.department_id, email_it=True)

    async def issue_password_reset(
        self, uow: UnitOfWork, env: RawEnvelope, cmd: IssuePasswordReset
    ) -> None:
        """Handle ``IssuePasswordReset`` (an admin asked): email a 1-hour reset link,
        within the account's cap of reset emails.

        An unknown account is not an error: there is nobody to email.
        """
        await self._reset(uow, cmd.account_id, cmd.department_id, asked_by="admin")

    async def reset_requested(
        self, uow: UnitOfWork, env: RawEnvelope, event: PasswordResetRequested
    ) -> None:
        """Handle ``PasswordResetRequested`` (someone asked on the public endpoint): email
        a reset link if the address has an account, within its cap. A request that
        waited longer than a reset link would live is dropped: its asker has moved on."""
        if datetime.now(UTC) - env.occurred_at > RESET_REQUEST_MAX_AGE:
            log.info("password reset request dropped: too old", event_id=str(env.event_id))
            return
        # A linked address finds its account too (the link goes to its login email).
        found = await store.account_holding(uow.conn, normalise_email(event.email))
        # An unconfirmed account is someone's registration in progress: whoever forgot
        # its password registers again (that replaces it).
        if found is not None and found.confirmed:
            await self._reset(uow, found.id, None, asked_by="public")

    async def _reset(
        self,
        uow: UnitOfWork,
        account_id: uuid.UUID,
        department_id: uuid.UUID | None,
        *,
        asked_by: Literal["admin", "public"],
    ) -> None:
        # The row lock serialises concurrent resets of one account, so the count below
        # cannot be read by two of them at once.
        account = await store.account_by_id(uow.conn, account_id, lock=True)
        if account is None:
            log.warning("password reset for an unknown account", account_id=str(account_id))
            return
        recent = await store.count_recent_tokens(uow.conn, account.id, "reset", RESET_WINDOW)
        if not reset_allowed(recent):
            log.info(
                "password reset dropped: too many", account_id=str(account.id), asked_by=asked_by
            )
            return
        await self.links.issue(uow, account, "reset", department_id, email_it=True)
