"""Identity's use cases, each one unit of work."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountCreated,
    AccountCreationRejected,
    CreateAccount,
    PasswordChanged,
    PasswordLinkIssued,
)
from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.keys import seal
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import new_token, normalise_email, password_problems, token_hash, token_refusal
from .settings import Settings

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")

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

    def _ttl(self, purpose: Purpose) -> timedelta:
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
        expires_at = datetime.now(UTC) + self._ttl(purpose)
        await store.insert_token(uow.conn, account.id, token_hash(token), purpose, expires_at)
        if email_it:
            if self._seal_key is None:
                raise RuntimeError("PRODIGY_SEAL_PUBLIC_KEY_PATH is not set")
            uow.emit(
                PasswordLinkIssued(
                    account_id=account.id,
                    email=account.email,
                    name=account.name,
                    purpose="reset" if purpose == "reset" else "welcome",
                    sealed_token=seal(self._seal_key, token),
                    expires_at=expires_at,
                    department_id=department_id,
                ),
                key=account.id,
            )
        url = f"{self.settings.public_base_url.rstrip('/')}/set-password?token={token}"
        return IssuedLink(token, url, expires_at)

    async def create_account(self, uow: UnitOfWork, env: RawEnvelope, cmd: CreateAccount) -> None:
        """Handle ``CreateAccount``: one account per email, or a rejection."""
        normalised = normalise_email(cmd.email)
        account_id = uuid.uuid4()
        if not await store.insert_account(uow.conn, account_id, cmd.email, normalised, cmd.name):
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
        account = store.Account(account_id, cmd.email, cmd.name, None)
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
        await self._issue(uow, account, "welcome", cmd.department_id, email_it=True)

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
            problems = password_problems(password, email=account.email)
            if problems:
                raise Problem(
                    422,
                    "weak-password",
                    "Password too weak",
                    "Choose a stronger password.",
                    errors=[{"field": "password", "message": f"Password {p}."} for p in problems],
                )
            hashed = await asyncio.to_thread(_hasher.hash, password)
            now = datetime.now(UTC)
            await store.set_password(uow.conn, account.id, hashed, now)
            uow.emit(PasswordChanged(account_id=account.id, changed_at=now), key=account.id)
            await uow.commit()

    async def login(self, email: str, password: str) -> tuple[str, int]:
        """An access token for good credentials; the same 401 for anything else."""
        async with self.engine.connect() as conn:
            account = await store.account_by_email(conn, normalise_email(email))
        stored = account.password_hash if account and account.password_hash else _DUMMY_HASH
        try:
            await asyncio.to_thread(_hasher.verify, stored, password)
            ok = account is not None and account.password_hash is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or account is None:
            raise Problem(
                401, "invalid-credentials", "Invalid credentials", "Email or password is wrong."
            )
        assert self.issuer is not None, "identity needs PRODIGY_SIGNING_KEY_PATH"
        ttl = self.settings.access_token_ttl_s
        return self.issuer.issue(account.id, ttl=timedelta(seconds=ttl)), ttl

    async def request_reset(self, email: str) -> None:
        """Email a reset link if the account exists; the caller learns nothing either way."""
        async with self.uow() as uow:
            account = await store.account_by_email(uow.conn, normalise_email(email))
            if account is None:
                return
            await self._issue(uow, account, "reset", None, email_it=True)
            await uow.commit()

    async def account(self, account_id: uuid.UUID) -> store.Account | None:
        """The account, if it exists."""
        async with self.engine.connect() as conn:
            return await store.account_by_id(conn, account_id)
