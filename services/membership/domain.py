"""Membership's rules. No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from email_validator import EmailNotValidError

from prodigy_users.contracts.email import normalized_email
from prodigy_users.contracts.membership import Role

ROLES: tuple[str, ...] = get_args(Role)
MANAGING_ROLES = frozenset({"admin"})

OperationKind = Literal["add_member", "create_department"]
OperationStatus = Literal["pending", "succeeded", "failed"]


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively (identity applies the same rule)."""
    return email.strip().lower()


def can_manage_members(role: str | None) -> bool:
    """Only department admins add, change or remove people."""
    return role in MANAGING_ROLES


def account_exists_problem(*, registering: bool = False) -> dict[str, Any]:
    """The problem a request gets when the email already has an account somewhere.

    An admin is told to invite the person; someone registering, to sign in and accept.
    """
    detail = (
        "An account with this email already exists: sign in, then accept with that account."
        if registering
        else "An account with this email already exists; invite them instead, and they "
        "join by signing in."
    )
    return {
        "type": "https://prodigy-users.dev/problems/account-exists",
        "title": "Account already exists",
        "status": 409,
        "detail": detail,
    }


# -- invitations and links ------------------------------------------------------------

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
_LINES = re.compile(r"[;\r\n\t]+")
_PLAIN = re.compile(r"[,\s]+")
_NAMED = re.compile(r'(?:"[^"]*"|[^,<>"]*?)\s*<\s*([^<>\s]*)\s*>')


@dataclass(frozen=True)
class PastedAddress:
    """One distinct address from a paste: normalised, or why it is not an address."""

    email: str
    error: str | None = None


def _chunks(raw: str) -> list[str]:
    out: list[str] = []
    for piece in _LINES.split(raw):
        # 'Ana Lima <ana@x.org>' and '"Lee, Bo" <bo@x.org>': the address in the angle
        # brackets, whatever commas or spaces the name has; the rest are plain tokens.
        rest = _NAMED.sub(lambda m: f",{m.group(1)},", piece)
        out.extend(c for c in _PLAIN.split(rest) if c)
    return out


def parse_pasted(raw: str | Sequence[str]) -> list[PastedAddress]:
    """The distinct addresses in what an admin pasted, in order of first appearance.

    Accepts a list or one string separated by commas, semicolons, spaces or new
    lines, with ``Name <email>`` forms, as people copy from spreadsheets and mail.
    """
    items = [raw] if isinstance(raw, str) else list(raw)
    seen: set[str] = set()
    out: list[PastedAddress] = []
    for item in items:
        for candidate in _chunks(item):
            try:
                email = normalized_email(candidate)
            except EmailNotValidError as exc:
                key, parsed = candidate.lower(), PastedAddress(candidate, str(exc))
            else:
                key, parsed = normalise_email(email), PastedAddress(email)
            if key not in seen:
                seen.add(key)
                out.append(parsed)
    return out


def derive_token(secret: bytes, kind: str, ident: uuid.UUID) -> str:
    """The link token of an invitation or registration link.

    Derived (HMAC) rather than stored: the database keeps only its hash, and the
    same link can still be shown again or resent in a reminder.
    """
    digest = hmac.new(secret, kind.encode() + b":" + ident.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What the database stores for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_refusal(
    status: str, expires_at: datetime, now: datetime
) -> Literal["used", "revoked", "expired"] | None:
    """Why an invitation cannot be accepted now (None: it can)."""
    if status == "accepted":
        return "used"
    if status == "revoked":
        return "revoked"
    if status == "expired" or expires_at <= now:
        return "expired"
    return None


def domain_allowed(email: str, allowed: Sequence[str]) -> bool:
    """Whether a registration-link email is in the allowed domains (empty: any)."""
    if not allowed:
        return True
    domain = email.rsplit("@", 1)[-1].lower()
    return domain in {d.lower().lstrip("@") for d in allowed}


def is_last_admin(role: str, admins_in_department: int) -> bool:
    """A department always keeps at least one admin."""
    return role == "admin" and admins_in_department <= 1


def group_key(name: str) -> str:
    """What makes two group names the same group: spaces collapsed, case folded."""
    return " ".join(name.split()).casefold()
