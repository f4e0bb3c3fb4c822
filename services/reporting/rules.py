"""What reporting's two features share: who may read reports, how names sort, a person's
row of the read model and its groups by name. No I/O.

The users table and the individual record show the same row (``UserRow``): the
projection folds membership events into it, the users table pages through it, the
record reads one. Its groups are stored as ids and named where the row is shown
(``GroupNames``, ``group_refs``), so renaming a group touches one row.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from prodigy_users.contracts.membership import Role, Status

VIEWER_ROLES = frozenset({"admin", "officer"})

# In the order of what each role may do (the users table sorts roles so).
ROLES: tuple[str, ...] = get_args(Role)
STATUSES: tuple[str, ...] = get_args(Status)


def can_view_reports(role: str | None) -> bool:
    """Admins and officers of a department see its reports; members do not."""
    return role in VIEWER_ROLES


def can_view_activity(role: str | None) -> bool:
    """Only a department's admins see who changed what in it."""
    return role == "admin"


def sort_name(name: str) -> str:
    """The key the users table sorts names by: case- and accent-insensitive.

    Computed here rather than in SQL so the order does not depend on the
    database's locale (the column is compared bytewise, ``COLLATE "C"``).
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class UserRow:
    """A person's row in one department's users table (``tables.users``): what the
    projection folds events into and what the users table and the record show.

    A removed person's row is kept (``removed_at`` set) and hidden everywhere; readers
    only ever see current rows, so they leave ``removed_at`` unselected.
    """

    department_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    sort_name: str
    email: str
    role: str
    status: str
    employee_id: str | None
    groups: list[uuid.UUID]  # ids; named where shown
    joined_at: datetime
    # When the latest event behind the row happened.
    updated_at: datetime
    removed_at: datetime | None = None

    @classmethod
    def of(cls, values: Mapping[Any, Any]) -> UserRow:
        """The row a query selected (by column name; other selected values are ignored)."""
        return cls(
            department_id=values["department_id"],
            account_id=values["account_id"],
            name=values["name"],
            sort_name=values["sort_name"],
            email=values["email"],
            role=values["role"],
            status=values["status"],
            employee_id=values["employee_id"],
            groups=list(values["groups"]),
            joined_at=values["joined_at"],
            updated_at=values["updated_at"],
            removed_at=values.get("removed_at"),
        )

    def touch(self, at: datetime) -> None:
        """Order comes from the partition; the timestamp only says when it last changed."""
        self.updated_at = max(self.updated_at, at)


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


class GroupNames:
    """A department's groups, ordered once, for naming many rows' groups cheaply (the same
    answer as ``group_refs``; an export names 100,000 rows' groups)."""

    def __init__(self, names: Mapping[uuid.UUID, str]) -> None:
        ordered = group_refs(names, names)
        self._ranked = {ref.group_id: (rank, ref) for rank, ref in enumerate(ordered)}
        self._joined: dict[tuple[uuid.UUID, ...], str] = {}

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._ranked

    def ids(self) -> frozenset[uuid.UUID]:
        """Every group id of the department."""
        return frozenset(self._ranked)

    def refs(self, ids: Iterable[uuid.UUID]) -> tuple[GroupRef, ...]:
        """A row's groups by name; ids with no known group are left out."""
        found = {self._ranked[g] for g in ids if g in self._ranked}
        return tuple(ref for _, ref in sorted(found, key=lambda ranked: ranked[0]))

    def joined(self, ids: Sequence[uuid.UUID], separator: str) -> str:
        """A row's group names in one string (remembered: rows share a few combinations)."""
        key = tuple(ids)
        text = self._joined.get(key)
        if text is None:
            if len(self._joined) >= 10_000:  # bounded, whatever the data
                self._joined.clear()
            text = self._joined[key] = separator.join(ref.name for ref in self.refs(ids))
        return text
