"""Identity's HTTP use cases, each one unit of work: sign in, set a password with a
link, ask for a reset (recorded here, worked by ``commands``), confirm a registration's
address (or ask for its link again), an operator's link, the caller's own account, signing
out everywhere (``revocations``); and
the sweep of registrations nobody confirmed."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import (
    AccountCreated,
    AccountEmailConfirmed,
    PasswordChanged,
    PasswordResetRequested,
)
from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.loops import keep_running, sleep_for
from prodigy_users.runtime.passwords import (
    DUMMY_HASH,
    hash_password,
    require_strong,
    verify_password,
)
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .confirmations import Confirmations
from .domain import CONFIRM_EMAIL, normalise_email, token_hash, token_refusal
from .errors import (
    AccountNotFound,
    EmailNotConfirmed,
    InvalidCredentials,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    WrongRegistrationPassword,
)
from .links import IssuedLink, Links
from .revocations import revoke_tokens
from .settings import Settings

# Why a token cannot be used (``domain.token_refusal``) -> the error that says so.
_REFUSALS: dict[str, type[DomainError]] = {
    "invalid": LinkInvalid,
    "used": LinkUsed,
    "expired": LinkExpired,
}

# Unconfirmed accounts the sweep deletes per transaction.
SWEEP_BATCH = 200

log = get_logger(__name__)


@dataclass(frozen=True)
class ConfirmedEmail:
    """A registration's address just confirmed: whose, and what it completes."""

    account_id: uuid.UUID
    email: str
    department_id: uuid.UUID | None
    request_id: uuid.UUID | None


class Accounts:
    """Identity's HTTP use cases on its database; built once the runtime's engine exists."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        issuer: TokenIssuer | None,
        links: Links,
        confirmations: Confirmations,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.issuer = issuer
        self.links = links
        self.confirmations = confirmations

    def uow(self) -> UnitOfWork:
        """A unit of work on identity's database."""
        return UnitOfWork(self.engine, "identity")

    async def operator_link(self, account_id: uuid.UUID) -> IssuedLink:
        """A set-password link handed to a platform operator (not emailed)."""
        async with self.uow() as uow:
            account = await store.account_by_id(uow.conn, account_id)
            if account is None:
                raise AccountNotFound()
            link = await self.links.issue(uow, account, "operator", None, email_it=False)
            await uow.commit()
        return link

    async def set_password(self, token: str, password: str) -> None:
        """Use a set-password or reset token once (``LinkInvalid``, ``LinkUsed``,
        ``LinkExpired``; ``WeakPassword`` if the password breaks the policy)."""
        async with self.uow() as uow:
            found = await store.lock_token(uow.conn, token_hash(token))
            refusal = token_refusal(found.state if found else None, datetime.now(UTC))
            if refusal is not None or found is None:
                raise _REFUSALS[refusal or "invalid"]()
            account = await store.account_by_id(uow.conn, found.account_id)
            assert account is not None
            require_strong(password, email=account.email)
            hashed = await asyncio.to_thread(hash_password, password)
            now = datetime.now(UTC)
            await store.set_password(uow.conn, account.id, hashed, now)
            uow.emit(PasswordChanged(account_id=account.id, changed_at=now), key=account.id)
            # Whoever held a token from the old password (or a stolen one) loses it.
            await revoke_tokens(uow, account.id, now, "password_set")
            await uow.commit()

    async def login(self, email: str, password: str) -> tuple[str, int]:
        """An access token for good credentials; ``InvalidCredentials`` for anything else.

        ``EmailNotConfirmed`` for the right password of an account whose address was
        never confirmed (only someone who knows the password learns that it exists).
        """
        async with self.engine.connect() as conn:
            account = await store.account_by_email(conn, normalise_email(email))
        stored = account.password_hash if account and account.password_hash else DUMMY_HASH
        matches = await asyncio.to_thread(verify_password, stored, password)
        ok = matches and account is not None and account.password_hash is not None
        if not ok or account is None:
            raise InvalidCredentials()
        if not account.confirmed:
            raise EmailNotConfirmed(account.email)
        assert self.issuer is not None, "identity needs PRODIGY_SIGNING_KEY_PATH"
        ttl = self.settings.access_token_ttl_s
        return self.issuer.issue(account.id, ttl=timedelta(seconds=ttl)), ttl

    async def request_reset(self, email: str) -> None:
        """Record a reset request; the caller learns nothing either way.

        Only the request is written here (``PasswordResetRequested``, read back by
        identity's consumer: ``commands.Commands.reset_requested``), the same work for
        every address, so the answer's timing cannot tell whether the account exists.
        """
        async with self.uow() as uow:
            uow.emit(PasswordResetRequested(email=email), key=email_key(email))
            await uow.commit()

    async def confirm_email(self, token: str, password: str) -> ConfirmedEmail:
        """Use a registration's confirmation link, with the password chosen then.

        The address is proved: the account becomes a real one (``AccountCreated`` for
        the request that made it, so membership lets the person in, then
        ``AccountEmailConfirmed``). The password is asked for because the link alone
        proves only the mailbox: someone who registered another person's address would
        otherwise get the account the day its owner clicks the link. ``LinkInvalid``,
        ``LinkUsed``, ``LinkExpired``; ``WrongRegistrationPassword`` (the link stays usable).
        """
        async with self.uow() as uow:
            found = await store.lock_token(uow.conn, token_hash(token))
            now = datetime.now(UTC)
            refusal = token_refusal(found.state if found else None, now, frozenset({CONFIRM_EMAIL}))
            if refusal is not None or found is None:
                raise _REFUSALS[refusal or "invalid"]()
            account = await store.account_by_id(uow.conn, found.account_id, lock=True)
            assert account is not None
            stored = account.password_hash or DUMMY_HASH
            matches = await asyncio.to_thread(verify_password, stored, password)
            if not matches or account.password_hash is None:
                raise WrongRegistrationPassword()
            await store.confirm(uow.conn, account.id, now)
            await store.retire_tokens(uow.conn, account.id, now, CONFIRM_EMAIL)
            uow.emit(
                AccountCreated(
                    account_id=account.id,
                    email=account.email,
                    name=account.name,
                    request_id=found.request_id,
                    department_id=found.department_id,
                ),
                key=account.id,
            )
            uow.emit(
                PasswordChanged(
                    account_id=account.id, changed_at=account.password_changed_at or now
                ),
                key=account.id,
            )
            uow.emit(
                AccountEmailConfirmed(
                    account_id=account.id,
                    email=account.email,
                    confirmed_at=now,
                    request_id=found.request_id,
                    department_id=found.department_id,
                ),
                key=account.id,
            )
            # The account could not sign in before; a cut-off here still makes sure
            # nothing issued before the address was proved is ever accepted.
            await revoke_tokens(uow, account.id, now, "email_confirmed")
            await uow.commit()
        return ConfirmedEmail(account.id, account.email, found.department_id, found.request_id)

    async def resend_confirmation(self, email: str) -> None:
        """Email a registration's confirmation link again; the caller learns nothing.

        Only for an unconfirmed account whose registration has not lapsed; the new link
        keeps that registration's expiry, and the per-hour cap of confirmation emails
        applies (``domain.MAX_CONFIRMATIONS_PER_WINDOW``).
        """
        async with self.uow() as uow:
            account = await store.account_by_email(uow.conn, normalise_email(email), lock=True)
            if account is None or account.confirmed:
                return
            now = datetime.now(UTC)
            waiting = [
                w
                for w in await store.waiting_requests(uow.conn, account.id, CONFIRM_EMAIL)
                if w.expires_at > now
            ]
            if not waiting:
                return  # lapsed: the sweep deletes it; registering again starts over
            latest = waiting[-1]
            await self.confirmations.issue(
                uow,
                account,
                request_id=latest.request_id,
                department_id=latest.department_id,
                expires_at=latest.expires_at,
                resent=True,
            )
            await uow.commit()

    async def sweep_unconfirmed(self) -> bool:
        """Delete accounts whose confirmation link lapsed unused; their requests lapse
        (``AccountRequestLapsed``). Nothing else is announced: nobody outside identity
        ever heard of them. True if any were deleted."""
        async with self.uow() as uow:
            lapsed = await store.lapsed_unconfirmed(uow.conn, CONFIRM_EMAIL, SWEEP_BATCH)
            if not lapsed:
                return False
            for account in lapsed:
                await self.confirmations.lapse(uow, account, "expired")
            await store.delete_accounts(uow.conn, [a.id for a in lapsed])
            await uow.commit()
        log.info("unconfirmed registrations deleted", count=len(lapsed))
        return True

    async def sweep_forever(self) -> None:
        """``sweep_unconfirmed`` for the life of the service, every
        ``unconfirmed_sweep_interval_s``."""
        interval = self.settings.unconfirmed_sweep_interval_s
        await keep_running(
            self.sweep_unconfirmed,
            what="unconfirmed accounts sweep",
            idle=lambda: sleep_for(interval),
        )

    async def sign_out_everywhere(self, account_id: uuid.UUID) -> None:
        """Refuse every access token of the account issued until now, on every service
        (``AccountNotFound`` if the token names no account: an operator's)."""
        async with self.uow() as uow:
            account = await store.account_by_id(uow.conn, account_id)
            if account is None:
                raise AccountNotFound("The token's account does not exist.")
            await revoke_tokens(uow, account.id, datetime.now(UTC), "signed_out_everywhere")
            await uow.commit()

    async def account(self, account_id: uuid.UUID) -> store.Account | None:
        """The account, if it exists."""
        async with self.engine.connect() as conn:
            return await store.account_by_id(conn, account_id)

    async def me(self, account_id: uuid.UUID) -> store.Account:
        """The caller's own account (``AccountNotFound`` if the token names none)."""
        account = await self.account(account_id)
        if account is None:
            raise AccountNotFound("The token's account does not exist.")
        return account
