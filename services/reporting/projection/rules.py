"""The projection as a fold: membership events applied to the read model's rows in memory.

No I/O. ``store`` loads the rows a run of events touches, ``Projection.apply``
folds the events into them in order, and ``store`` writes back what changed in a
few statements, which is what makes a replay of a whole topic fast. Live
consumption uses the same fold (a run of one event), so a rebuilt read model
equals the live one by construction.

Each rule is safe to apply again (set a value, add a group only if absent), and
one department's events arrive in order (they are keyed by department).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberAdded,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberMerged,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)

from ..rules import UserRow, sort_name

MemberKey = tuple[uuid.UUID, uuid.UUID]  # (department_id, account_id)

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
    "membership.member_merged": "merged",
}

# Every membership payload the projection folds.
PROJECTED: frozenset[type[Payload]] = frozenset(
    {
        DepartmentCreated,
        MemberAdded,
        MemberRoleChanged,
        MemberStatusChanged,
        EmployeeIdSet,
        MemberRemoved,
        MemberRestored,
        GroupCreated,
        GroupRenamed,
        GroupDeleted,
        MemberJoinedGroup,
        MemberLeftGroup,
        MemberMerged,
    }
)


@dataclass(frozen=True)
class Event:
    """What the fold needs of one message: its identity, type, time and payload."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    payload: Any


@dataclass(frozen=True)
class HistoryRow:
    """One entry of a membership's history (keyed by the event: recorded once)."""

    event_id: uuid.UUID
    department_id: uuid.UUID
    account_id: uuid.UUID
    occurred_at: datetime
    event: str
    details: dict[str, Any]


@dataclass(frozen=True)
class DepartmentRow:
    """A department's name as of an event."""

    department_id: uuid.UUID
    name: str
    updated_at: datetime


@dataclass(frozen=True)
class GroupRow:
    """A group's current name."""

    group_id: uuid.UUID
    department_id: uuid.UUID
    name: str
    updated_at: datetime


def history_event(event_type: str) -> str:
    """The history's name for an event type (the type itself if it has none)."""
    return HISTORY_EVENTS.get(event_type, event_type)


def member_keys(events: Iterable[Event]) -> set[MemberKey]:
    """The rows a run of events reads or writes."""
    keys: set[MemberKey] = set()
    for e in events:
        account = getattr(e.payload, "account_id", None)
        if account is not None:
            keys.add((e.payload.department_id, account))
        if isinstance(e.payload, MemberMerged):
            keys.add((e.payload.department_id, e.payload.merged_account_id))
    return keys


@dataclass
class Projection:
    """Folds a run of events into the rows it was given; collects what to write.

    ``members`` maps every key the run touches to its stored row (None: no row).
    A ``GroupDeleted`` touches rows of the whole department, loaded or not, so the
    caller cuts runs at it (see ``split_at_group_deletions``) and deletes in SQL.
    """

    members: dict[MemberKey, UserRow | None]
    dirty: set[MemberKey] = field(default_factory=set)
    history: list[HistoryRow] = field(default_factory=list)
    departments: list[DepartmentRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    # Rows to delete (a merged account's), and (department, from, to) of merges whose
    # stored history and activity move to the kept account, in order.
    deleted: set[MemberKey] = field(default_factory=set)
    merges: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = field(default_factory=list)

    def changed_members(self) -> list[UserRow]:
        """The rows to write back."""
        return [row for key in self.dirty if (row := self.members.get(key)) is not None]

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        p = event.payload
        at = event.occurred_at
        if isinstance(p, DepartmentCreated):
            self.departments.append(DepartmentRow(p.department_id, p.name, at))
            return
        if isinstance(p, GroupCreated | GroupRenamed):
            self.groups.append(GroupRow(p.group_id, p.department_id, p.name, at))
            return
        if isinstance(p, GroupDeleted):
            raise ValueError("GroupDeleted is applied in SQL, between runs")
        if isinstance(p, MemberMerged):
            self._merge(event)
            return
        key = (p.department_id, p.account_id)
        row = self.members.get(key)
        details: dict[str, Any] = {}
        if isinstance(p, MemberAdded):
            self._set(key, _added(row, p, at))
            details = {"role": p.role, "via": p.via}
        elif isinstance(p, MemberRestored):
            self._set(key, _restored(row, p, at))
            details = {"role": p.role, "via": p.via}
        elif row is not None:
            if isinstance(p, MemberRoleChanged):
                row.role = p.role
                details = {"role": p.role, "previous_role": p.previous_role}
            elif isinstance(p, MemberStatusChanged):
                row.status = p.status
                details = {"status": p.status}
            elif isinstance(p, EmployeeIdSet):
                row.employee_id = p.employee_id
                details = {"employee_id": p.employee_id}
            elif isinstance(p, MemberRemoved):
                row.removed_at = at
            elif isinstance(p, MemberJoinedGroup):
                if p.group_id not in row.groups:
                    row.groups.append(p.group_id)
                details = {"group_id": str(p.group_id)}
            elif isinstance(p, MemberLeftGroup):
                if p.group_id in row.groups:
                    row.groups.remove(p.group_id)
                details = {"group_id": str(p.group_id)}
            row.touch(at)
            self.dirty.add(key)
        else:
            details = _details(p)
        self.history.append(
            HistoryRow(
                event.event_id,
                p.department_id,
                p.account_id,
                at,
                history_event(event.type),
                details,
            )
        )

    def _merge(self, event: Event) -> None:
        """Two accounts of one person merged: the kept account's row is as the event
        says, the merged account's row goes, and its history is the kept one's."""
        p: MemberMerged = event.payload
        kept = (p.department_id, p.account_id)
        merged = (p.department_id, p.merged_account_id)
        self._set(kept, merged_row(self.members.get(kept), self.members.get(merged), p, event))
        self.members[merged] = None
        self.dirty.add(merged)
        self.deleted.add(merged)
        self.merges.append((p.department_id, p.merged_account_id, p.account_id))
        # This run's own entries of the merged account are the kept one's too.
        self.history = [
            replace(h, account_id=p.account_id) if (h.department_id, h.account_id) == merged else h
            for h in self.history
        ]
        self.history.append(
            HistoryRow(
                event.event_id,
                p.department_id,
                p.account_id,
                event.occurred_at,
                history_event(event.type),
                {"merged_account_id": str(p.merged_account_id)},
            )
        )

    def _set(self, key: MemberKey, row: UserRow | None) -> None:
        if row is not None:
            self.members[key] = row
            self.dirty.add(key)


def _details(p: Any) -> dict[str, Any]:
    """History details of an event for a row we do not have (it is recorded anyway)."""
    if isinstance(p, MemberRoleChanged):
        return {"role": p.role, "previous_role": p.previous_role}
    if isinstance(p, MemberStatusChanged):
        return {"status": p.status}
    if isinstance(p, EmployeeIdSet):
        return {"employee_id": p.employee_id}
    if isinstance(p, MemberJoinedGroup | MemberLeftGroup):
        return {"group_id": str(p.group_id)}
    return {}


def _added(row: UserRow | None, p: MemberAdded, at: datetime) -> UserRow | None:
    """A joined person's row; groups are kept (they come from their own events).

    An add older than what the row already reflects changes nothing.
    """
    if row is not None and row.updated_at > at:
        return None
    return UserRow(
        department_id=p.department_id,
        account_id=p.account_id,
        name=p.name,
        sort_name=sort_name(p.name),
        email=str(p.email),
        role=p.role,
        status=p.status,
        employee_id=p.employee_id,
        groups=list(row.groups) if row is not None else [],
        joined_at=p.joined_at,
        updated_at=at,
        removed_at=None,
    )


def _whole_row(
    p: MemberRestored | MemberMerged,
    *,
    joined_at: datetime,
    updated_at: datetime,
    removed_at: datetime | None,
) -> UserRow:
    """A row from an event that carries the whole membership (a restore, a merge)."""
    return UserRow(
        department_id=p.department_id,
        account_id=p.account_id,
        name=p.name,
        sort_name=sort_name(p.name),
        email=str(p.email),
        role=p.role,
        status=p.status,
        employee_id=p.employee_id,
        groups=list(dict.fromkeys(p.group_ids)),
        joined_at=joined_at,
        updated_at=updated_at,
        removed_at=removed_at,
    )


def _restored(row: UserRow | None, p: MemberRestored, at: datetime) -> UserRow:
    """A removed person back, as the event says; the row keeps its first ``joined_at``."""
    restored = _whole_row(
        p,
        joined_at=p.restored_at if row is None else row.joined_at,
        updated_at=at if row is None else row.updated_at,
        removed_at=None,
    )
    restored.touch(at)
    return restored


def merged_row(
    kept: UserRow | None, merged: UserRow | None, p: MemberMerged, event: Event
) -> UserRow:
    """The kept account's row after a merge: the membership as the event says it, the
    earliest ``joined_at``, and (a removed membership) the time it was removed."""
    removed_at = None
    if p.removed:
        stored = [r.removed_at for r in (kept, merged) if r is not None and r.removed_at]
        removed_at = max(stored) if stored else event.occurred_at
    return _whole_row(
        p,
        joined_at=p.joined_at,
        updated_at=max([event.occurred_at, *(r.updated_at for r in (kept, merged) if r)]),
        removed_at=removed_at,
    )


# (role, status) of a current member; None: no row, or a removed person.
Standing = tuple[str, str] | None
CountKey = tuple[uuid.UUID, str, str]  # (department_id, role, status)


def standing(row: UserRow | None) -> Standing:
    """What a row adds to its department's counts (``user_counts``)."""
    if row is None or row.removed_at is not None:
        return None
    return (row.role, row.status)


def count_changes(
    before: Mapping[MemberKey, Standing], after: Mapping[MemberKey, Standing]
) -> dict[CountKey, int]:
    """How the counts per department, role and status move when rows go from ``before``
    to ``after`` (keys missing from ``before``: no row then); no zero moves."""
    moves: dict[CountKey, int] = {}
    for key, now in after.items():
        was = before.get(key)
        if was == now:
            continue
        department = key[0]
        if was is not None:
            moves[(department, *was)] = moves.get((department, *was), 0) - 1
        if now is not None:
            moves[(department, *now)] = moves.get((department, *now), 0) + 1
    return {k: n for k, n in moves.items() if n}


def split_at_group_deletions(events: list[Event]) -> list[list[Event]]:
    """Cut a run so every ``GroupDeleted`` is a run of its own."""
    runs: list[list[Event]] = [[]]
    for e in events:
        if isinstance(e.payload, GroupDeleted):
            runs.append([e])
            runs.append([])
        else:
            runs[-1].append(e)
    return [r for r in runs if r]
