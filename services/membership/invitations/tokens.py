"""The secrets behind invitation and registration links."""

from __future__ import annotations

import uuid
from pathlib import Path

from prodigy_users.runtime.keys import seal

from .rules import derive_token


class LinkTokens:
    """Derives link tokens from the link secret, and seals them to notifications.

    The database keeps only a token's hash; the token itself is derived again when
    a link is shown or resent, and travels to notifications sealed to its key.
    """

    def __init__(
        self, secret_path: Path | None, seal_public_key_path: Path | None, app_base_url: str
    ) -> None:
        self._secret = Path(secret_path).read_bytes() if secret_path else None
        self._seal_key = Path(seal_public_key_path).read_bytes() if seal_public_key_path else None
        self._base_url = app_base_url.rstrip("/")

    def token(self, kind: str, ident: uuid.UUID) -> str:
        """The token of an invitation (``kind`` "invitation") or link ("link")."""
        if self._secret is None:
            raise RuntimeError("PRODIGY_LINK_SECRET_PATH is not set")
        return derive_token(self._secret, kind, ident)

    def sealed(self, token: str) -> str:
        """The token sealed to notifications' key, as events carry it."""
        if self._seal_key is None:
            raise RuntimeError("PRODIGY_SEAL_PUBLIC_KEY_PATH is not set")
        return seal(self._seal_key, token)

    def join_url(self, link_id: uuid.UUID) -> str:
        """The self-registration URL people open."""
        return f"{self._base_url}/join/{self.token('link', link_id)}"
