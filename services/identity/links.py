"""Set-password links: issued in the caller's unit of work, their tokens sealed to
notifications' key for the email that carries them. No engine of its own: the
consumer's handlers and the HTTP use cases both issue links in their own transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.runtime.keys import seal, seal_many
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import new_token, token_hash
from .settings import Settings

Purpose = Literal["welcome", "reset", "operator"]


@dataclass(frozen=True)
class IssuedLink:
    """A set-password link just issued."""

    token: str
    url: str
    expires_at: datetime


class Links:
    """Issues set-password links; built once per process by ``app.spec``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._seal_key: bytes | None = (
            Path(settings.seal_public_key_path).read_bytes()
            if settings.seal_public_key_path
            else None
        )

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

    def ttl(self, purpose: Purpose) -> timedelta:
        """How long a set-password link of this purpose works."""
        seconds = {
            "welcome": self.settings.welcome_link_ttl_s,
            "reset": self.settings.reset_link_ttl_s,
            "operator": self.settings.operator_link_ttl_s,
        }[purpose]
        return timedelta(seconds=seconds)

    async def issue(
        self,
        uow: UnitOfWork,
        account: store.Account,
        purpose: Purpose,
        department_id: uuid.UUID | None,
        *,
        email_it: bool,
    ) -> IssuedLink:
        """A new link for ``account``, stored in ``uow``; ``email_it``: announced with
        ``PasswordLinkIssued`` so notifications emails it."""
        token = new_token()
        expires_at = datetime.now(UTC) + self.ttl(purpose)
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
