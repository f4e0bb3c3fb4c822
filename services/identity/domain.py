"""Identity's rules: email identity and single-use tokens. No I/O.

The password policy lives in ``prodigy_users.runtime.passwords``: membership
checks it too, when people register while joining.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# The public reset request answers 202 whatever happens, so anyone can ask for any
# address, and an admin may click "reset" again and again: at most this many reset
# emails per account per window, whoever asked, the rest dropped.
MAX_RESETS_PER_WINDOW = 3
RESET_WINDOW = timedelta(hours=1)
# A public request still waiting after this long (identity was down) is dropped.
RESET_REQUEST_MAX_AGE = timedelta(hours=1)


def normalise_email(email: str) -> str:
    """The form under which an email is unique: trimmed and lower-cased.

    Lower-casing the local part too is deliberate: people type their address
    with varying case, and two accounts differing only by case are always a mistake.
    """
    return email.strip().lower()


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


def reset_allowed(sent_in_window: int) -> bool:
    """Whether another reset email may go out, given how many went out in the window."""
    return sent_in_window < MAX_RESETS_PER_WINDOW
