"""Identity's rules: email identity, single-use tokens, merging accounts. No I/O.

The password policy lives in ``prodigy_users.runtime.passwords``: membership
checks it too, when people register while joining.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# The public reset request answers 202 whatever happens, so anyone can ask for any
# address, and an admin may click "reset" again and again: at most this many reset
# emails per account per window, whoever asked, the rest dropped.
MAX_RESETS_PER_WINDOW = 3
RESET_WINDOW = timedelta(hours=1)
# A public request still waiting after this long (identity was down) is dropped.
RESET_REQUEST_MAX_AGE = timedelta(hours=1)

# Registering, and asking for the confirmation link again, email an address anyone
# can type: at most this many confirmation emails per account per window. Beyond
# that the registration still takes effect (its password, its request) and the
# latest link is kept, but no email goes out until the window moves on.
MAX_CONFIRMATIONS_PER_WINDOW = 5
CONFIRMATION_WINDOW = timedelta(hours=1)

# What each kind of token may be used for.
CONFIRM_EMAIL = "confirm_email"
# A link sent to the new address a person asked to use as their login email.
CHANGE_EMAIL = "change_email"
# A token that links the address it was sent to (``new_email``) to the account.
LINK_ADDRESS = "link_address"
SET_PASSWORD = frozenset({"welcome", "reset", "operator"})


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
    purpose: str = "welcome"


def token_refusal(
    state: TokenState | None, now: datetime, purposes: frozenset[str] = SET_PASSWORD
) -> str | None:
    """Why a token cannot be used now for one of ``purposes`` (None: it can).

    A token of another purpose is as good as none: a confirmation link never sets a
    password, a set-password link never confirms a registration."""
    if state is None or state.purpose not in purposes:
        return "invalid"
    if state.used_at is not None:
        return "used"
    if state.expires_at <= now:
        return "expired"
    return None


def reset_allowed(sent_in_window: int) -> bool:
    """Whether another reset email may go out, given how many went out in the window."""
    return sent_in_window < MAX_RESETS_PER_WINDOW


def confirmation_email_allowed(sent_in_window: int) -> bool:
    """Whether another confirmation email may go out, given how many did in the window."""
    return sent_in_window < MAX_CONFIRMATIONS_PER_WINDOW


def name_change(current: str, wanted: str) -> tuple[str, str] | None:
    """``(old, new)`` if setting the name to ``wanted`` changes it, else None (the
    same name again announces nothing)."""
    return None if wanted == current else (current, wanted)


def email_change_refusal(current: str, wanted: str) -> str | None:
    """Why a person cannot ask to move their login email to ``wanted`` (None: they
    can). Whether another account holds it is not said here: the request never tells."""
    if normalise_email(wanted) == normalise_email(current):
        return "same"
    return None


MergeStep = Literal["merge", "done", "self", "drop_merged_elsewhere", "keep_merged", "unconfirmed"]


def merge_step(
    keep_id: uuid.UUID,
    drop_id: uuid.UUID,
    keep_merged_into: uuid.UUID | None,
    drop_merged_into: uuid.UUID | None,
    *,
    confirmed: bool = True,
) -> MergeStep:
    """What merging ``drop_id`` into ``keep_id`` does, both accounts known.

    ``done``: it was merged into this very account before (asking again changes
    nothing); ``self``: one account; ``drop_merged_elsewhere``: it went into another
    account already; ``keep_merged``: the account to keep was itself merged away;
    ``unconfirmed`` (``confirmed`` false): either account is a registration nobody
    confirmed (it may lapse and be deleted, or be confirmed and announced as a new
    account, so it takes no part in a merge).
    """
    if keep_id == drop_id:
        return "self"
    if drop_merged_into == keep_id:
        return "done"
    if drop_merged_into is not None:
        return "drop_merged_elsewhere"
    if keep_merged_into is not None:
        return "keep_merged"
    if not confirmed:
        return "unconfirmed"
    return "merge"
