"""The password a person chose while registering, as identity receives it: an Argon2id
hash that membership made and sealed to identity's key, so that the command topic
never holds it in the clear (a hash can be attacked offline by whoever reads it).
"""

from __future__ import annotations

from pathlib import Path

from prodigy_users.contracts.identity import CreateAccount
from prodigy_users.runtime.keys import PASSWORD_HASH, SealKey, load_seal_key, unseal
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.passwords import is_password_hash

log = get_logger(__name__)


class SealedPasswords:
    """Opens the sealed password hashes of ``CreateAccount`` commands."""

    def __init__(self, private_key_path: Path | None) -> None:
        self._key: SealKey | None = load_seal_key(private_key_path) if private_key_path else None

    def open(self, cmd: CreateAccount) -> str | None:
        """The Argon2 hash the person's account starts with, or None: none was sent, or
        what was sent does not open or is no hash (the person gets a set-password link
        instead, which is how a registration that lost its password still ends well).

        A command written before hashes were sealed (``password_hash`` in the clear,
        within the topic's retention) is still honoured.
        """
        value = cmd.password_hash
        if cmd.sealed_password_hash is not None:
            if self._key is None:
                log.error("sealed password hash, but no PRODIGY_IDENTITY_SEAL_PRIVATE_KEY_PATH")
                return None
            try:
                value = unseal(self._key, cmd.sealed_password_hash, PASSWORD_HASH)
            except ValueError as exc:
                # Never log the sealed value; the type of error is enough.
                log.error("a sealed password hash does not open", error=type(exc).__name__)
                return None
        if value is not None and not is_password_hash(value):
            # Never store what may be a password in the clear.
            log.error("CreateAccount carried something that is not an Argon2 hash; ignored")
            return None
        return value
