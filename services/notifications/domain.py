"""Rules of the delivery log: which template, when to retry, when to give up. No I/O."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlencode

from .errors import InvalidCursor, UnknownStatus

EmailStatus = Literal["pending", "sending", "retrying", "sent", "failed"]
EMAIL_STATUSES: tuple[EmailStatus, ...] = ("pending", "sending", "retrying", "sent", "failed")
Template = Literal[
    "welcome",
    "password_reset",
    "invitation",
    "invitation_reminder",
    "welcome_joined",
    "confirm_email",
    "sign_in_to_join",
    "change_email",
    "email_changed",
    "link_address",
]
Purpose = Literal["welcome", "reset"]
# Which page a template's link opens: the console's set-password page, its
# invitation page, its email-confirmation page, or the link someone registered
# through (an invitation's or the department's registration link: ``door``, told
# by the email's ``via`` detail). A template without a kind carries no secret link.
LinkKind = Literal[
    "set_password", "invitation", "confirm_email", "door", "change_email", "link_address"
]

# ``sending`` is due again only once its lease has run out (the sender died).
DUE_STATUSES: tuple[EmailStatus, ...] = ("pending", "retrying", "sending")

ADMIN = "admin"
DEFAULT_DEPARTMENT_LABEL = "Prodigy"
MAX_ERROR_LENGTH = 1000

_TEMPLATES: dict[Purpose, Template] = {"welcome": "welcome", "reset": "password_reset"}

_LINKS: dict[str, LinkKind] = {
    "welcome": "set_password",
    "password_reset": "set_password",
    "invitation": "invitation",
    "invitation_reminder": "invitation",
    "confirm_email": "confirm_email",
    "sign_in_to_join": "door",
    "change_email": "change_email",
    "link_address": "link_address",
}

# (department, account): whose role in which department.
MemberKey = tuple[uuid.UUID, uuid.UUID]

_ROLE_LABELS = {"admin": "an admin", "officer": "an officer", "member": "a member"}


def template_for(purpose: Purpose) -> Template:
    """The email that answers a ``PasswordLinkIssued`` of this purpose."""
    return _TEMPLATES[purpose]


def invitation_template(*, reminder: bool) -> Template:
    """The email that answers an ``InvitationLinkIssued``: the first one, or a reminder."""
    return "invitation_reminder" if reminder else "invitation"


def link_kind(template: str) -> LinkKind | None:
    """Which link the template carries (None: no token, nothing secret in it)."""
    return _LINKS.get(template)


def set_password_url(public_base_url: str, token: str) -> str:
    """The link identity serves to set a password with ``token``."""
    return f"{public_base_url.rstrip('/')}/set-password?{urlencode({'token': token})}"


def invitation_url(app_base_url: str, token: str) -> str:
    """The link that opens an invitation: ``{app}/invitations/{token}``."""
    return f"{app_base_url.rstrip('/')}/invitations/{quote(token, safe='')}"


def join_url(app_base_url: str, token: str) -> str:
    """A department's self-registration link: ``{app}/join/{token}``."""
    return f"{app_base_url.rstrip('/')}/join/{quote(token, safe='')}"


def confirm_email_url(app_base_url: str, token: str) -> str:
    """The link that confirms a registration's address: ``{app}/confirm-email?token=...``."""
    return f"{app_base_url.rstrip('/')}/confirm-email?{urlencode({'token': token})}"


def change_email_url(app_base_url: str, token: str) -> str:
    """The link that confirms a new login email: ``{app}/email-change?token=...``."""
    return f"{app_base_url.rstrip('/')}/email-change?{urlencode({'token': token})}"


def link_address_url(app_base_url: str, token: str) -> str:
    """The link that links an address to an account: ``{app}/address-confirmation?token=...``."""
    return f"{app_base_url.rstrip('/')}/address-confirmation?{urlencode({'token': token})}"


def masked_email(email: str) -> str:
    """``a***@example.org``: enough for the owner to recognise an address, not enough
    for whoever reads the old mailbox to write to the new one."""
    local, _, domain = email.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"


def door_url(app_base_url: str, via: str, token: str) -> str:
    """The link someone registered through: an invitation's, or the registration link."""
    if via == "invitation":
        return invitation_url(app_base_url, token)
    return join_url(app_base_url, token)


def last_roles(changes: Iterable[tuple[MemberKey, str | None]]) -> dict[MemberKey, str | None]:
    """What a run of membership events leaves: each person's last role in each
    department, None if the last thing that happened was their removal."""
    return dict(changes)


def role_label(role: str) -> str:
    """How an email names a role: "as a member"."""
    return _ROLE_LABELS.get(role, role)


def department_label(name: str | None) -> str:
    """How the email names the department (we may not have heard of it yet)."""
    return name or DEFAULT_DEPARTMENT_LABEL


def event_key(department_id: uuid.UUID | None, to: str) -> str:
    """Partition key of the notification events: the department, else the recipient."""
    return str(department_id) if department_id is not None else to.lower()


def short_error(error: str) -> str:
    """An error message short enough for the log table."""
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def is_permanent_smtp_code(code: int) -> bool:
    """5xx replies mean the relay will never accept this message; 4xx may pass later."""
    return 500 <= code < 600


def lease_left_for_send(
    lease_left: timedelta, *, send_timeout: timedelta, lease: timedelta
) -> bool:
    """Whether a claimed email still held this long may be tried now.

    The attempt (at most about ``send_timeout``) must end well inside the lease, or
    another replica could take the email over while we are still sending it, and it
    would go out twice. With a lease configured shorter than that, half the lease.
    """
    return lease_left > min(send_timeout * 1.5, lease / 2)


# The namespace of delivery workers' session advisory locks (the two-key form, so it
# never meets the relay's or the migrations' one-key locks): "Noti".
WORKER_LOCK_NAMESPACE = 0x4E6F7469
# Worker ids are positive 32-bit numbers (the lock's second key).
MAX_WORKER_ID = 2**31 - 1


@dataclass(frozen=True)
class Lease:
    """An email in ``sending``: who claimed it (a worker id, None before ids existed),
    when, until when, and whether that worker is alive (holds its session lock)."""

    email_id: uuid.UUID
    attempts: int
    holder: int | None
    claimed_at: datetime | None
    ends_at: datetime
    holder_alive: bool


def lease_orphaned(
    lease: Lease, *, now: datetime, database_started_at: datetime, grace: timedelta
) -> bool:
    """Whether another worker may take this lease over now, without waiting for its end.

    A worker holds a PostgreSQL session lock for as long as it lives: PostgreSQL
    drops it the moment the worker's process dies (its connection closes), so a
    lease whose holder holds no lock was left by a dead worker, and nothing is in
    flight for it any more. Except when the lock went with a restart of the database
    (the lease was taken before it started): the holder may be alive, with answers of
    the relay still to record once it reconnects; it has ``grace`` to do so.
    An expired lease is taken over anyway, as always (a holder we cannot see).
    """
    if lease.ends_at <= now:
        return True
    if lease.holder is None or lease.holder_alive:
        return False
    if lease.claimed_at is None or lease.claimed_at < database_started_at:
        return now >= database_started_at + grace
    return True


def link_expired(expires_at: datetime | None, now: datetime) -> bool:
    """A set-password link or an invitation past its expiry is not worth sending."""
    return expires_at is not None and expires_at <= now


def department_hold(department_known: bool, wait: timedelta) -> timedelta | None:
    """How long a new email waits for its department's name (None: send at once).

    The name comes with ``DepartmentCreated`` on another topic than the email's
    own event, so it may arrive a moment later; the email waits for it (and is
    released the moment it arrives), at most ``wait``, then goes out naming "Prodigy".
    """
    if department_known or wait <= timedelta(0):
        return None
    return wait


# Keys of an email's ``details`` that carry the trace context of the event it answers.
TRACE_PREFIX = "trace."


def trace_carrier(details: Mapping[str, str]) -> dict[str, str]:
    """The trace context saved in an email's details (empty if none)."""
    return {k[len(TRACE_PREFIX) :]: v for k, v in details.items() if k.startswith(TRACE_PREFIX)}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2**(n-1)`` after the n-th failure, capped, then give up."""

    max_attempts: int
    base_s: float
    max_s: float

    def delay(self, failed_attempts: int) -> timedelta:
        """Wait before the next attempt once ``failed_attempts`` attempts have failed."""
        exponent = max(failed_attempts - 1, 0)
        # Cap the exponent too: 2**1000 would overflow a float.
        seconds = self.base_s * 2 ** min(exponent, 62)
        return timedelta(seconds=min(seconds, self.max_s))

    def after_failure(self, attempts: int, *, permanent: bool = False) -> timedelta | None:
        """How long until the next attempt, or None to give up (the email fails)."""
        if permanent or attempts >= self.max_attempts:
            return None
        return self.delay(attempts)

    def schedule(self) -> list[timedelta]:
        """Every wait between attempts, in order (for docs and tests)."""
        return [self.delay(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class OutgoingEmail:
    """An email a worker has claimed (its lease held) and must now send or reschedule."""

    id: uuid.UUID
    source_event_id: uuid.UUID
    template: str
    to: str
    recipient_name: str
    department_id: uuid.UUID | None
    department_name: str | None
    account_id: uuid.UUID | None
    sealed_token: str | None
    link_expires_at: datetime | None
    correlation_id: str | None
    # Incremented by the claim: it numbers this attempt and fences the lease
    # (a write for an older attempt matches no row).
    attempts: int
    # What else the template shows (role, inviter's name); never anything secret.
    details: dict[str, str] = field(default_factory=dict)
    queued_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt at a claimed email.

    ``error`` None: the relay took it. ``released``: it was never tried (its lease
    was about to run out while it waited for a connection) and goes back as it was.
    ``relay_wide``: the error was the relay's (away, or refusing everyone), not this
    message's.
    """

    email: OutgoingEmail
    error: str | None = None
    permanent: bool = False
    released: bool = False
    relay_wide: bool = False


@dataclass(frozen=True)
class EmailLogEntry:
    """One line of a department's email log, as admins see it."""

    id: uuid.UUID
    to: str
    template: str
    status: EmailStatus
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class LogCursor:
    """Where a page of the email log (newest first) ends: its last entry's sort key."""

    created_at: datetime
    email_id: uuid.UUID


def encode_cursor(cursor: LogCursor) -> str:
    """Opaque to clients: base64url of the last entry's (created_at, id)."""
    raw = json.dumps([cursor.created_at.isoformat(), str(cursor.email_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> LogCursor:
    """Read a cursor back; ``InvalidCursor`` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        created_at, email_id = json.loads(raw)
        cursor = LogCursor(datetime.fromisoformat(created_at), uuid.UUID(email_id))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if cursor.created_at.tzinfo is None:
        raise InvalidCursor("the cursor is malformed")
    return cursor


def parse_statuses(values: list[str]) -> tuple[EmailStatus, ...]:
    """``?status=sent&status=retrying`` or ``?status=sent,retrying``; ``UnknownStatus``
    names the first unknown one."""
    chosen: list[EmailStatus] = []
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if not name:
                continue
            status = next((s for s in EMAIL_STATUSES if s == name), None)
            if status is None:
                raise UnknownStatus(
                    f"unknown status {item.strip()!r}; one of: {', '.join(EMAIL_STATUSES)}"
                )
            if status not in chosen:
                chosen.append(status)
    return tuple(chosen)
