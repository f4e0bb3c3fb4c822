"""Passwords, shared by identity (sign in, set, reset) and membership (registration).

One policy and one hashing scheme for the whole system: a password chosen while
registering through membership is hashed there with the same Argon2 parameters
identity uses, so identity can store that hash as if it had made it itself.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import WeakPassword

MIN_PASSWORD = 10
MAX_PASSWORD = 128
# A short list of the most common choices; the length rule does most of the work.
COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou123",
        "letmein1234",
        "welcome123",
        "administrator",
        "passw0rd123",
        "0123456789",
        "abcdefghij",
        "qwerty12345",
        "changeme123",
        "firefighter",
    }
)
ARGON2_PREFIX = "$argon2"

_hasher = PasswordHasher()

# Verified against when the email is unknown (or has no password yet), so a failed
# sign-in takes as long whether or not the account exists. Written out rather than
# hashed at import (a tenth of a second of every start); made with the hasher's
# parameters, which a unit test checks (``check_needs_rehash``).
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$3dSTzBFCDgsaKyjToMP"
    "PBA$SLu1hy41natMUMbq+KlLMg4LX3gNHHXtDUvyDnT4xwU"
)


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Why a password is too weak (empty list: acceptable).

    Each entry completes the sentence "Password ...", e.g. "is too common".
    """
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        problems.append(f"must be at most {MAX_PASSWORD} characters long")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("is too common")
    if email and password.strip().lower() == email.strip().lower():
        problems.append("must not be your email address")
    if password and len(set(password)) < 4:
        problems.append("is too repetitive")
    return problems


def require_strong(password: str, email: str | None = None) -> None:
    """``WeakPassword`` naming every reason, if the password is too weak."""
    problems = password_problems(password, email)
    if problems:
        raise WeakPassword(
            errors=[{"field": "password", "message": f"Password {p}."} for p in problems]
        )


def hash_password(password: str) -> str:
    """The Argon2id hash to store (CPU-heavy: call it through ``asyncio.to_thread``)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; False for a wrong or malformed hash.

    CPU-heavy like ``hash_password``: call it through ``asyncio.to_thread``.
    """
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True if ``password_hash`` was made with other parameters than new hashes get."""
    return _hasher.check_needs_rehash(password_hash)


def is_password_hash(value: str) -> bool:
    """Whether ``value`` looks like a hash ``hash_password`` made (not a password by mistake)."""
    return value.startswith(ARGON2_PREFIX + "id$") or value.startswith(ARGON2_PREFIX + "i$")
