"""Rules of the activity log: who made each change (the actor's kind), the rows the
projection records, the log's filters and pages, and how an actor is said. No I/O.

Every membership event about a person is one row: what happened (the record's
history names, ``HISTORY_EVENTS``), to whom, when, and who did it; so is an admin's
fix of a member's name (identity's ``AccountUpdated``, ``renamed``), and every
invitation sent, sent again, withdrawn or lapsed (``INVITATION_ACTIONS``), which names
the invited address rather than an account. Who did it is
read from the event's actor field (``added_by``, ``changed_by``, ``removed_by``,
``restored_by``) and its ``via``/``import_id``, and stored as a kind and an account
id; names are looked up when the log is read, so a corrected name shows everywhere.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import AccountUpdated
from prodigy_users.contracts.membership import (
    InvitationExpired,
    InvitationReminded,
    InvitationRevoked,
    MemberInvited,
)
from prodigy_users.runtime.auth import OPERATOR_SUBJECT

from ..cursor import KeyKind, decode_cursor, encode_cursor
from ..errors import InvalidActivityFilter

ActorKind = Literal["admin", "self", "import", "operator", "system"]
ACTOR_KINDS: tuple[ActorKind, ...] = get_args(ActorKind)

Action = Literal[
    "joined",
    "role_changed",
    "status_changed",
    "employee_id_set",
    "joined_group",
    "left_group",
    "removed",
    "restored",
    "merged",
    "renamed",
    "invited",
    "invitation_reminded",
    "invitation_revoked",
    "invitation_expired",
]
ACTIONS: tuple[Action, ...] = get_args(Action)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

# Newest first; ties (one transaction's events share a time) by event id.
ORDER = "-at"
KEY_KINDS: tuple[KeyKind, ...] = ("time", "uuid")

# How people read each kind of actor when they have no name (the console, the CSV).
SAID: dict[ActorKind, str] = {
    "self": "the person themselves",
    "import": "an import",
    "operator": "an operator",
    "system": "the system",
    "admin": "an admin",
}


@dataclass(frozen=True)
class Actor:
    """Who made a change: a kind, and the account behind it when there is one (the
    admin; the person themselves; the admin who uploaded an import, if known)."""

    kind: ActorKind
    account_id: uuid.UUID | None = None


def by_account(actor_id: uuid.UUID | None, subject_id: uuid.UUID | None) -> Actor:
    """The actor an event's ``..._by`` field names: nobody (``system``), an operator
    (``OPERATOR_SUBJECT``, no account), the person themselves, or an admin."""
    if actor_id is None:
        return Actor("system")
    if actor_id == OPERATOR_SUBJECT:
        return Actor("operator")
    if actor_id == subject_id:
        return Actor("self", actor_id)
    return Actor("admin", actor_id)


def _importer(actor_id: uuid.UUID | None) -> Actor:
    # An operator's upload names nobody (membership's ``acting_admin``).
    if actor_id is None or actor_id == OPERATOR_SUBJECT:
        return Actor("import")
    return Actor("import", actor_id)


def actor_of(payload: Any) -> Actor:
    """Who made the change an event records.

    Joining through an invitation or the registration link is the person's own doing
    (the invitation's admin is in ``details``: ``invited_by``); an import's changes are
    the import's, with the admin who uploaded it; a department's first admin added
    with it is the operator's. A change whose event names nobody is the system's.
    """
    subject: uuid.UUID = payload.account_id
    if hasattr(payload, "merged_account_id"):
        # Only an operator merges accounts (``membership.member_merged``).
        return Actor("operator")
    via = getattr(payload, "via", None)
    if via in ("invitation", "registration_link"):
        return Actor("self", subject)
    if via == "operator":
        return Actor("operator")
    by: uuid.UUID | None = None
    for name in ("added_by", "restored_by", "changed_by", "removed_by"):
        by = by or getattr(payload, name, None)
    if via == "import" or getattr(payload, "import_id", None) is not None:
        return _importer(by)
    return by_account(by, subject)


@dataclass(frozen=True)
class ActivityRow:
    """One change in a department (``tables.activity``), keyed by its event (recorded once)."""

    event_id: uuid.UUID
    department_id: uuid.UUID
    occurred_at: datetime
    action: str
    # None: an invitation's row, whose address is ``details["email"]``.
    subject_id: uuid.UUID | None
    actor_kind: str
    actor_id: uuid.UUID | None
    details: dict[str, Any]


def activity_row(
    event_id: uuid.UUID, action: str, occurred_at: datetime, payload: Any, details: dict[str, Any]
) -> ActivityRow:
    """The log's row for a membership event about a person (``details`` as the record's
    history has them, plus the inviting admin of a join by invitation)."""
    actor = actor_of(payload)
    extra = dict(details)
    if getattr(payload, "via", None) == "invitation" and getattr(payload, "added_by", None):
        extra["invited_by"] = str(payload.added_by)
    import_id = getattr(payload, "import_id", None)
    if import_id is not None:
        extra["import_id"] = str(import_id)
    return ActivityRow(
        event_id=event_id,
        department_id=payload.department_id,
        occurred_at=occurred_at,
        action=action,
        subject_id=payload.account_id,
        actor_kind=actor.kind,
        actor_id=actor.account_id,
        details=extra,
    )


# Membership's invitation events: the action each is, and the field naming who did it
# (an expiry is nobody's: the system's).
INVITATION_ACTIONS: dict[type[Payload], tuple[Action, str | None]] = {
    MemberInvited: ("invited", "invited_by"),
    InvitationReminded: ("invitation_reminded", "reminded_by"),
    InvitationRevoked: ("invitation_revoked", "revoked_by"),
    InvitationExpired: ("invitation_expired", None),
}


def invitation_row(event_id: uuid.UUID, occurred_at: datetime, payload: Any) -> ActivityRow:
    """The log's row for an invitation event: to an address (``details``: ``email``,
    ``invitation_id``; for the invitation itself also ``role`` and the ``name`` the
    admin typed, if any), by the admin who acted."""
    action, by_field = INVITATION_ACTIONS[type(payload)]
    actor = by_account(getattr(payload, by_field) if by_field else None, None)
    details: dict[str, Any] = {
        "email": str(payload.email),
        "invitation_id": str(payload.invitation_id),
    }
    if isinstance(payload, MemberInvited):
        details["role"] = payload.role
        if payload.name:
            details["name"] = payload.name
    return ActivityRow(
        event_id=event_id,
        department_id=payload.department_id,
        occurred_at=occurred_at,
        action=action,
        subject_id=None,
        actor_kind=actor.kind,
        actor_id=actor.account_id,
        details=details,
    )


def rename_details(event: AccountUpdated) -> dict[str, Any] | None:
    """The record's history and the log's ``details`` of an admin's fix of a member's
    name (``{name, previous_name}``); None for any other ``AccountUpdated``.

    Only an admin's rename happens in a department (``department_id``). A person's own
    changes and an operator's belong to none: every department's rows show the new
    name and email, and no department's log says it changed (which departments to
    tell depends on the memberships, which a replay may not have read yet).
    """
    if event.department_id is None or event.name is None or event.changed_by is None:
        return None
    return {"name": event.name.new, "previous_name": event.name.old}


# -- reading the log -------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityFilters:
    """Which changes a view of the log shows (each empty: no condition). ``since`` is
    inclusive, ``until`` exclusive (the day after the ``to`` date asked for)."""

    person: uuid.UUID | None = None
    actions: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class ActivityView:
    """One view of a department's activity log, newest first."""

    department_id: uuid.UUID
    filters: ActivityFilters = field(default_factory=ActivityFilters)

    def fingerprint(self) -> str:
        """A short digest of the department and filters: what a cursor must come from."""
        f = self.filters
        doc = [
            str(self.department_id),
            str(f.person or ""),
            sorted(f.actions),
            f.since.isoformat() if f.since else "",
            f.until.isoformat() if f.until else "",
        ]
        raw = json.dumps(doc, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def _split(values: Iterable[str] | None) -> list[str]:
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def _day(name: str, value: str | None, errors: list[dict[str, str]]) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append({"field": name, "message": f"not a date (YYYY-MM-DD): {value!r}"})
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def parse_filters(
    department_id: uuid.UUID,
    *,
    person: str | None = None,
    action: Iterable[str] | None = None,
    since: str | None = None,
    to: str | None = None,
) -> ActivityView:
    """The view the query parameters ask for; ``InvalidActivityFilter`` naming every bad
    field. ``from`` and ``to`` are UTC dates, both included."""
    errors: list[dict[str, str]] = []
    who: uuid.UUID | None = None
    if person is not None and person.strip():
        try:
            who = uuid.UUID(person.strip())
        except ValueError:
            errors.append({"field": "person", "message": f"not an account id: {person!r}"})
    actions = _split(action)
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        errors.append(
            {
                "field": "action",
                "message": f"unknown value(s) {', '.join(map(repr, unknown))}; "
                f"one of {', '.join(ACTIONS)}",
            }
        )
    first, last = _day("from", since, errors), _day("to", to, errors)
    if first is not None and last is not None and last < first:
        errors.append({"field": "to", "message": f"{last} is before from ({first})"})
    if errors:
        raise InvalidActivityFilter(errors)
    return ActivityView(
        department_id,
        ActivityFilters(
            person=who,
            actions=frozenset(actions),
            since=_midnight(first) if first else None,
            until=_midnight(last + timedelta(days=1)) if last else None,
        ),
    )


def encode_after(view: ActivityView, occurred_at: datetime, event_id: uuid.UUID) -> str:
    """The cursor that resumes ``view`` after this change."""
    return encode_cursor(ORDER, view.fingerprint(), KEY_KINDS, (occurred_at, event_id))


def decode_after(value: str, view: ActivityView) -> tuple[datetime, uuid.UUID]:
    """Where a cursor resumes; ``InvalidCursor`` unless issued for exactly this view."""
    at, event_id = decode_cursor(value, ORDER, view.fingerprint(), KEY_KINDS)
    return at, event_id


@dataclass(frozen=True)
class By:
    """Who made a change, as the log and the record's history show it."""

    kind: str
    account_id: uuid.UUID | None
    name: str | None
    label: str


def said(kind: str, account_id: uuid.UUID | None, names: Mapping[uuid.UUID, str]) -> By:
    """An actor named: an admin by their name (``an admin`` if reporting never heard
    it), the person, an import (with its uploader's name when known), an operator."""
    name = names.get(account_id) if account_id is not None else None
    actor_kind: ActorKind = next((k for k in ACTOR_KINDS if k == kind), "system")
    label = SAID[actor_kind]
    if actor_kind == "admin" and name:
        label = name
    return By(actor_kind, account_id, name, label)


@dataclass(frozen=True)
class ActivityEntry:
    """One change as the log shows it: the stored row, the person's name and the actor."""

    event_id: uuid.UUID
    at: datetime
    action: str
    # None for an invitation: it names an address (``person_email``), not an account.
    person_id: uuid.UUID | None
    person_name: str | None
    by: By
    details: dict[str, Any]
    person_email: str | None = None

    def person_said(self) -> str:
        """Whom, in words: the person's name; an invitation's address, after the name
        typed with it if any (``Nia New <nia@x.org>``)."""
        if self.person_email is None:
            return self.person_name or ""
        return (
            f"{self.person_name} <{self.person_email}>" if self.person_name else self.person_email
        )


def entries(rows: Sequence[ActivityRow], names: Mapping[uuid.UUID, str]) -> list[ActivityEntry]:
    """Stored rows with their people and actors named."""
    return [
        ActivityEntry(
            r.event_id,
            r.occurred_at,
            r.action,
            r.subject_id,
            names.get(r.subject_id) if r.subject_id is not None else r.details.get("name"),
            said(r.actor_kind, r.actor_id, names),
            r.details,
            person_email=r.details.get("email") if r.subject_id is None else None,
        )
        for r in rows
    ]


def accounts_named(rows: Iterable[ActivityRow]) -> set[uuid.UUID]:
    """Every account a page names: its people and its actors."""
    found: set[uuid.UUID] = set()
    for r in rows:
        if r.subject_id is not None:
            found.add(r.subject_id)
        if r.actor_id is not None:
            found.add(r.actor_id)
    return found


@dataclass(frozen=True)
class ActivityPage:
    """A page of the log and where the next one starts (None: the end)."""

    items: list[ActivityEntry]
    next_cursor: str | None


def page_of(
    rows: Sequence[ActivityRow], limit: int, view: ActivityView, names: Mapping[uuid.UUID, str]
) -> ActivityPage:
    """Cut ``limit + 1`` fetched rows into a page: the extra only says there is more."""
    shown = list(rows[:limit])
    more = len(rows) > limit and bool(shown)
    cursor = encode_after(view, shown[-1].occurred_at, shown[-1].event_id) if more else None
    return ActivityPage(entries(shown, names), cursor)


def details_text(details: Mapping[str, Any]) -> str:
    """A change's details in one line for a file (``role: officer; previous_role: member``)."""
    return "; ".join(f"{k}: {'' if v is None else v}" for k, v in sorted(details.items()))


def from_history(history: Iterable[Any], payloads: Mapping[uuid.UUID, Any]) -> list[ActivityRow]:
    """The log's rows for the history entries a run of events recorded (``HistoryRow``:
    event id, time, name, details), each with its event's actor."""
    return [
        activity_row(h.event_id, h.event, h.occurred_at, payloads[h.event_id], h.details)
        for h in history
        if h.event_id in payloads
    ]
