"""Invitation and registration-link rules: pasted addresses, link tokens, why a link
cannot be used. No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from email_validator import EmailNotValidError

from prodigy_users.contracts.email import email_key, validated_email

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
InvitationRefusal = Literal["used", "revoked", "expired"]
LinkRefusal = Literal["invalid", "expired", "domain"]

_LINES = re.compile(r"[;\r\n\t]+")
_PLAIN = re.compile(r"[,\s]+")
_NAMED = re.compile(r'("[^"]*"|[^,<>"]*?)\s*<\s*([^<>\s]*)\s*>')
# A name kept from a paste is at most this long (longer is cut, not refused).
NAME_MAX = 200


@dataclass(frozen=True)
class PastedAddress:
    """One distinct address from a paste: normalised, or why it is not an address."""

    email: str
    error: str | None = None
    # The name pasted with it ("Ana Lima <ana@x.org>"), if any.
    name: str | None = None


def _name(raw: str) -> str | None:
    name = " ".join(raw.strip().strip('"').split())[:NAME_MAX].strip()
    return name or None


def _chunks(raw: str) -> list[tuple[str, str | None]]:
    """(candidate address, the name pasted with it) in order."""
    out: list[tuple[str, str | None]] = []
    for piece in _LINES.split(raw):
        # 'Ana Lima <ana@x.org>' and '"Lee, Bo" <bo@x.org>': the address in the angle
        # brackets, whatever commas or spaces the name has; the rest are plain tokens.
        at = 0
        for match in _NAMED.finditer(piece):
            out.extend((c, None) for c in _PLAIN.split(piece[at : match.start()]) if c)
            if match.group(2):
                out.append((match.group(2), _name(match.group(1))))
            at = match.end()
        out.extend((c, None) for c in _PLAIN.split(piece[at:]) if c)
    return out


def parse_pasted(raw: str | Sequence[str]) -> list[PastedAddress]:
    """The distinct addresses in what an admin pasted, in order of first appearance.

    Accepts a list or one string separated by commas, semicolons, spaces or new
    lines, with ``Name <email>`` forms, as people copy from spreadsheets and mail
    (the name is kept with its address; the first appearance of an address wins).
    """
    items = [raw] if isinstance(raw, str) else list(raw)
    seen: set[str] = set()
    out: list[PastedAddress] = []
    for item in items:
        for candidate, name in _chunks(item):
            try:
                email = validated_email(candidate)
            except EmailNotValidError as exc:
                key, parsed = candidate.lower(), PastedAddress(candidate, str(exc))
            else:
                key, parsed = email_key(email), PastedAddress(email, name=name)
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
) -> InvitationRefusal | None:
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


def must_confirm(email: str, invited_normalised: str | None) -> bool:
    """Whether someone registering with ``email`` must prove they own it before joining.

    Always through the registration link (``invited_normalised`` None: it invites no
    address in particular); through an invitation, unless ``email`` is the invited
    address itself (compared as the one-account-per-email rule compares), whose owner
    proved it by opening the link emailed there.
    """
    return invited_normalised is None or email_key(email) != invited_normalised


def link_refusal(
    *,
    enabled: bool,
    expires_at: datetime | None,
    allowed_domains: Sequence[str],
    email: str | None,
    now: datetime,
) -> LinkRefusal | None:
    """Why a registration link cannot be used now, by ``email`` if known (None: it can)."""
    if not enabled:
        return "invalid"
    if expires_at is not None and expires_at <= now:
        return "expired"
    if email is not None and not domain_allowed(email, allowed_domains):
        return "domain"
    return None
