"""Identity's rules: email identity, password policy, single-use tokens. No I/O."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

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


def normalise_email(email: str) -> str:
    """The form under which an email is unique: trimmed and lower-cased.

    Lower-casing the local part too is deliberate: people type their address
    with varying case, and two accounts differing only by case are always a mistake.
    """
    return email.strip().lower()


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Why a password is too weak (empty list: acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        problems.append(f"must be at most {MAX_PASSWORD} characters long")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("is too common")
    if email and password.strip().lower() == normalise_email(email):
        problems.append("must not be your email address")
    if password and len(set(password)) < 4:
        problems.append("is too repetitive")
    return problems


def new_token() -> str:
    """A single-use token: 256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored instead of the token. The token is random, so plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenState:
    """A stored token as the rules see it."""

    expires_at: datetime
    used_at: datetime | None


def token_refusal(state: TokenState | None, now: datetime) -> str | None:
    """Why a token cannot be used now (None: it can)."""
    if state is None:
        return "invalid"
    if state.used_at is not None:
        return "used"
    if state.expires_at <= now:
        return "expired"
    return None
