"""Rules of the read model: who may read it, how the users table is ordered and paged.

No I/O. The cursor is opaque to clients: base64url of the last row's sort key
and the sort it belongs to, so a cursor from another sort is refused once more
sorts exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

VIEWER_ROLES = frozenset({"admin", "officer"})
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Sort = Literal["name"]


class InvalidCursor(ValueError):
    """The cursor was not issued by us (or not for this listing)."""


def can_view_reports(role: str | None) -> bool:
    """Admins and officers of a department see its reports; members do not."""
    return role in VIEWER_ROLES


def sort_name(name: str) -> str:
    """The key the users table sorts names by: case- and accent-insensitive.

    Computed here rather than in SQL so the order does not depend on the
    database's locale (the column is compared bytewise, ``COLLATE "C"``).
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's sort key."""

    sort_name: str
    account_id: uuid.UUID
    sort: Sort = "name"


def encode_cursor(cursor: Cursor) -> str:
    """The opaque string handed to clients."""
    raw = json.dumps(
        {"s": cursor.sort, "k": [cursor.sort_name, str(cursor.account_id)]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str, *, sort: Sort = "name") -> Cursor:
    """Read a cursor back; ``InvalidCursor`` if it is not one of ours for ``sort``."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        doc = json.loads(raw)
        name, account = doc["k"]
        if doc["s"] != sort or not isinstance(name, str):
            raise InvalidCursor("the cursor belongs to another listing")
        return Cursor(sort_name=name, account_id=uuid.UUID(account), sort=sort)
    except InvalidCursor:
        raise
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc


@dataclass(frozen=True)
class UsersQuery:
    """One view of a department's users table.

    Filters (role, status, group, q) and other sorts will be added here; the store
    turns the query into SQL, so routes and use cases do not change shape.
    """

    department_id: uuid.UUID
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None
    sort: Sort = "name"


@dataclass(frozen=True)
class GroupRef:
    """A group as a person's row shows it."""

    group_id: uuid.UUID
    name: str


def group_refs(ids: Iterable[uuid.UUID], names: Mapping[uuid.UUID, str]) -> tuple[GroupRef, ...]:
    """A row's groups with their current names, by name; ids with no known group are left out.

    Every group a member joins was created before (one department's events are in
    order), so a missing name means the group is gone, not that it is late.
    """
    refs = {gid: GroupRef(gid, names[gid]) for gid in ids if gid in names}
    return tuple(sorted(refs.values(), key=lambda g: (sort_name(g.name), str(g.group_id))))


# What the individual record's history calls each lifecycle event.
HISTORY_EVENTS: dict[str, str] = {
    "membership.member_added": "joined",
    "membership.member_role_changed": "role_changed",
    "membership.member_status_changed": "status_changed",
    "membership.employee_id_set": "employee_id_set",
    "membership.member_joined_group": "joined_group",
    "membership.member_left_group": "left_group",
    "membership.member_removed": "removed",
    "membership.member_restored": "restored",
}


def history_event(event_type: str) -> str:
    """The history's name for an event type (the type itself if it has none)."""
    return HISTORY_EVENTS.get(event_type, event_type)


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened to a person's membership."""

    at: datetime
    event: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRow:
    """A person as the users table shows them."""

    department_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    sort_name: str
    email: str
    role: str
    status: str
    employee_id: str | None
    groups: tuple[GroupRef, ...]
    joined_at: datetime

    def cursor(self) -> Cursor:
        """The cursor that resumes after this row."""
        return Cursor(sort_name=self.sort_name, account_id=self.account_id)


@dataclass(frozen=True)
class UsersPage:
    """One page of the users table and where the next one starts (None: the end)."""

    items: list[UserRow]
    next_cursor: str | None


def page_of(rows: list[UserRow], limit: int) -> UsersPage:
    """Cut ``limit + 1`` fetched rows into a page: the extra row only says there is more."""
    items = rows[:limit]
    more = len(rows) > limit
    return UsersPage(items, encode_cursor(items[-1].cursor()) if more and items else None)
