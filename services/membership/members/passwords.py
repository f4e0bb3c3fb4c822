"""A registration's password on its way to identity: membership hashes it (Argon2id)
and seals the hash to identity's key, so the command topic never carries it in the
clear and identity alone can open it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prodigy_users.runtime.keys import PASSWORD_HASH, seal
from prodigy_users.runtime.passwords import hash_password


class PasswordSeal:
    """Hashes passwords and seals the hashes to identity (``identity-seal.pub.pem``)."""

    def __init__(self, identity_public_key_path: Path | None) -> None:
        self._key = (
            Path(identity_public_key_path).read_bytes() if identity_public_key_path else None
        )

    async def sealed_hash(self, password: str) -> str:
        """The password's Argon2id hash sealed to identity (hashed off the event loop)."""
        if self._key is None:
            raise RuntimeError("PRODIGY_IDENTITY_SEAL_PUBLIC_KEY_PATH is not set")
        hashed = await asyncio.to_thread(hash_password, password)
        return seal(self._key, hashed, PASSWORD_HASH)
