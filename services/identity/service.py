"""Identity's HTTP use cases, each one unit of work: sign in, set a password with a
link, ask for a reset (recorded here, worked by ``commands``), an operator's link,
the caller's own account."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import PasswordChanged, PasswordResetRequested
from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.passwords import (
    DUMMY_HASH,
    hash_password,
    require_strong,
    verify_password,
)
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import normalise_email, token_hash, token_refusal
from .errors import AccountNotFound, InvalidCredentials, LinkExpired, LinkInvalid, LinkUsed
from .links import IssuedLink, Links
from .settings import Settings

# Why a token cannot be used (``domain.token_refusal``) -> the error that says so.
_REFUSALS: dict[str, type[DomainError]] = {
    "invalid": LinkInvalid,
    "used": LinkUsed,
    "expired": LinkExpired,
}


class Accounts:
    """Identity's HTTP use cases on its database; built once the runtime's engine exists."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        issuer: TokenIssuer | None,
        links: Links,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.issuer = issuer
        self.links = links

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
            refusal = token_refusal(found[1] if found else None, datetime.now(UTC))
            if refusal is not None or found is None:
                raise _REFUSALS[refusal or "invalid"]()
            account = await store.account_by_id(uow.conn, found[0])
            assert account is not None
            require_strong(password, email=account.email)
            hashed = await asyncio.to_thread(hash_password, password)
            now = datetime.now(UTC)
            await store.set_password(uow.conn, account.id, hashed, now)
            uow.emit(PasswordChanged(account_id=account.id, changed_at=now), key=account.id)
            await uow.commit()

    async def login(self, email: str, password: str) -> tuple[str, int]:
        """An access token for good credentials; ``InvalidCredentials`` for anything else."""
        async with self.engine.connect() as conn:
            account = await store.account_by_email(conn, normalise_email(email))
        stored = account.password_hash if account and account.password_hash else DUMMY_HASH
        matches = await asyncio.to_thread(verify_password, stored, password)
        ok = matches and account is not None and account.password_hash is not None
        if not ok or account is None:
            raise InvalidCredentials()
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
