"""Identity's use cases, each one unit of work."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountCreated,
    AccountCreationRejected,
    CreateAccount,
    IssuePasswordReset,
    PasswordChanged,
    PasswordLinkIssued,
)
from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.keys import seal, seal_many
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.passwords import (
    DUMMY_HASH,
    hash_password,
    is_password_hash,
    require_strong,
    verify_password,
)
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import (
    RESET_WINDOW,
    new_token,
    normalise_email,
    reset_allowed,
    token_hash,
    token_refusal,
)
from .settings import Settings

log = get_logger(__name__)

Purpose = Literal["welcome", "reset", "operator"]


@dataclass(frozen=True)
class IssuedLink:
    """A set-password link just issued."""

    token: str
    url: str
    expires_at: datetime


class Identity:
    """Identity's use cases; built once per process by ``app.spec``."""

    def __init__(
        self, engine: AsyncEngine | None, settings: Settings, issuer: TokenIssuer | None
    ) -> None:
        self._engine = engine
        self.settings = settings
        self.issuer = issuer
        self._seal_key: bytes | None = (
            Path(settings.seal_public_key_path).read_bytes()
            if settings.seal_public_key_path
            else None
        )

    @property
    def engine(self) -> AsyncEngine:
        """Identity's database (bound when the service starts)."""
        assert self._engine is not None, "not bound to a runtime yet"
        return self._engine

    @engine.setter
    def engine(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def uow(self) -> UnitOfWork:
        """A unit of work on identity's database."""
        return UnitOfWork(self.engine, "identity")

    def sealed(self, token: str) -> str:
        """A token sealed to notifications' key, as the credentials topic carries it."""
        if self._seal_key is None:
            raise RuntimeError("PRODIGY_SEAL_PUBLIC_KEY_PATH is not set")
        return seal(self._seal_key, token)

    def sealed_many(self, tokens: list[str]) -> list[str]:
        """Tokens sealed to notifications' key together (a batch's: one HPKE operation)."""
        if self._seal_key is None:
            raise RuntimeError("PRODIGY_SEAL_PUBLIC_KEY_PATH is not set")
        return seal_many(self._seal_key, tokens)

    def link_ttl(self, purpose: Purpose) -> timedelta:
        """How long a set-password link of this purpose works."""
        seconds = {
            "welcome": self.settings.welcome_link_ttl_s,
            "reset": self.settings.reset_link_ttl_s,
            "operator": self.settings.operator_link_ttl_s,
        }[purpose]
        return timedelta(seconds=seconds)

    async def _issue(
        self,
        uow: UnitOfWork,
        account: store.Account,
        purpose: Purpose,
        department_id: uuid.UUID | None,
        *,
        email_it: bool,
    ) -> IssuedLink:
        token = new_token()
        expires_at = datetime.now(UTC) + self.link_ttl(purpose)
        await store.insert_token(uow.conn, account.id, token_hash(token), purpose, expires_at)
        if email_it:
            uow.emit(
                PasswordLinkIssued(
                    account_id=account.id,
                    email=account.email,
                    name=account.name,
                    purpose="reset" if purpose == "reset" else "welcome",
                    sealed_token=self.sealed(token),
                    expires_at=expires_at,
                    department_id=department_id,
                ),
                key=account.id,
            )
        url = f"{self.settings.public_base_url.rstrip('/')}/set-password?token={token}"
        return IssuedLink(token, url, expires_at)

    async def create_account(self, uow: UnitOfWork, env: RawEnvelope, cmd: CreateAccount) -> None:
        """Handle ``CreateAccount``: one account per email, or a rejection.

        With a ``password_hash`` (the person registered with a password) the account
        starts with it and no set-password email goes out; without one, the person
        is emailed a set-password link.
        """
        normalised = normalise_email(cmd.email)
        account_id = uuid.uuid4()
        password_hash = cmd.password_hash
        if password_hash is not None and not is_password_hash(password_hash):
            # Never store what may be a password in the clear; the person gets a link instead.
            log.error("CreateAccount carried something that is not an Argon2 hash; ignored")
            password_hash = None
        now = datetime.now(UTC)
        inserted = await store.insert_account(
            uow.conn,
            account_id,
            cmd.email,
            normalised,
            cmd.name,
            password_hash=password_hash,
            password_set_at=now,
        )
        if not inserted:
            existing = await store.account_by_email(uow.conn, normalised)
            uow.emit(
                AccountCreationRejected(
                    request_id=cmd.request_id,
                    email=cmd.email,
                    reason="account_exists",
                    department_id=cmd.department_id,
                    existing_account_id=existing.id if existing else None,
                ),
                key=cmd.request_id,
            )
            return
        account = store.Account(account_id, cmd.email, cmd.name, password_hash)
        uow.emit(
            AccountCreated(
                account_id=account_id,
                email=cmd.email,
                name=cmd.name,
                request_id=cmd.request_id,
                department_id=cmd.department_id,
            ),
            key=account_id,
        )
        if password_hash is not None:
            uow.emit(PasswordChanged(account_id=account_id, changed_at=now), key=account_id)
            return
        await self._issue(uow, account, "welcome", cmd.department_id, email_it=True)

    async def issue_password_reset(
        self, uow: UnitOfWork, env: RawEnvelope, cmd: IssuePasswordReset
    ) -> None:
        """Handle ``IssuePasswordReset`` (an admin asked): email a 1-hour reset link.

        An unknown account is not an error: there is nobody to email.
        """
        account = await store.account_by_id(uow.conn, cmd.account_id)
        if account is None:
            log.warning("password reset for an unknown account", account_id=str(cmd.account_id))
            return
        await self._issue(uow, account, "reset", cmd.department_id, email_it=True)

    async def operator_link(self, account_id: uuid.UUID) -> IssuedLink:
        """A set-password link handed to a platform operator (not emailed)."""
        async with self.uow() as uow:
            account = await store.account_by_id(uow.conn, account_id)
            if account is None:
                raise Problem(404, "not-found", "No such account", "There is no such account.")
            link = await self._issue(uow, account, "operator", None, email_it=False)
            await uow.commit()
        return link

    async def set_password(self, token: str, password: str) -> None:
        """Use a set-password or reset token once."""
        async with self.uow() as uow:
            found = await store.lock_token(uow.conn, token_hash(token))
            refusal = token_refusal(found[1] if found else None, datetime.now(UTC))
            if refusal is not None or found is None:
                raise Problem(
                    400,
                    f"token-{refusal}",
                    "Link cannot be used",
                    {
                        "invalid": "This link is not valid.",
                        "used": "This link has already been used.",
                        "expired": "This link has expired; ask for a new one.",
                    }[refusal or "invalid"],
                )
            account = await store.account_by_id(uow.conn, found[0])
            assert account is not None
            require_strong(password, email=account.email)
            hashed = await asyncio.to_thread(hash_password, password)
            now = datetime.now(UTC)
            await store.set_password(uow.conn, account.id, hashed, now)
            uow.emit(PasswordChanged(account_id=account.id, changed_at=now), key=account.id)
            await uow.commit()

    async def login(self, email: str, password: str) -> tuple[str, int]:
        """An access token for good credentials; the same 401 for anything else."""
        async with self.engine.connect() as conn:
            account = await store.account_by_email(conn, normalise_email(email))
        stored = account.password_hash if account and account.password_hash else DUMMY_HASH
        matches = await asyncio.to_thread(verify_password, stored, password)
        ok = matches and account is not None and account.password_hash is not None
        if not ok or account is None:
            raise Problem(
                401, "invalid-credentials", "Invalid credentials", "Email or password is wrong."
            )
        assert self.issuer is not None, "identity needs PRODIGY_SIGNING_KEY_PATH"
        ttl = self.settings.access_token_ttl_s
        return self.issuer.issue(account.id, ttl=timedelta(seconds=ttl)), ttl

    async def request_reset(self, email: str) -> None:
        """Email a reset link if the account exists; the caller learns nothing either way.

        At most ``MAX_RESETS_PER_WINDOW`` reset emails per account per hour, so the
        public endpoint cannot flood an address; requests beyond are dropped silently.
        """
        async with self.uow() as uow:
            found = await store.account_by_email(uow.conn, normalise_email(email))
            if found is None:
                return
            # The row lock serialises concurrent requests for one account, so the
            # count below cannot be read by two of them at once.
            account = await store.account_by_id(uow.conn, found.id, lock=True)
            assert account is not None
            recent = await store.count_recent_tokens(uow.conn, account.id, "reset", RESET_WINDOW)
            if not reset_allowed(recent):
                log.info("password reset request dropped: too many", account_id=str(account.id))
                return
            await self._issue(uow, account, "reset", None, email_it=True)
            await uow.commit()

    async def account(self, account_id: uuid.UUID) -> store.Account | None:
        """The account, if it exists."""
        async with self.engine.connect() as conn:
            return await store.account_by_id(conn, account_id)
