"""Which membership survives when an operator merges two accounts of one person, and
what it holds. No I/O (``merges`` reads and writes).

In a department where only the merged account was a member, its membership becomes
the kept account's as it is. Where both were, one membership stays: a current one
over a removed one (the person is a member through it), else the kept account's; its
role, status and dates stay, the employee ID is the kept account's (else the merged
one's), the groups are both accounts' groups, and the person first joined when either
account first did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Side:
    """One account's membership of a department, as the merge needs it."""

    role: str
    status: str
    employee_id: str | None
    joined_at: datetime
    removed_at: datetime | None
    group_ids: tuple[uuid.UUID, ...] = ()

    @property
    def current(self) -> bool:
        """Whether the person is a member (not removed) through this membership."""
        return self.removed_at is None


def merged_membership(kept: Side | None, merged: Side) -> Side:
    """The kept account's membership after the merge (see the module)."""
    if kept is None:
        return merged
    winner = kept if kept.current or not merged.current else merged
    groups = tuple(dict.fromkeys((*kept.group_ids, *merged.group_ids)))
    return Side(
        role=winner.role,
        status=winner.status,
        employee_id=kept.employee_id if kept.employee_id is not None else merged.employee_id,
        joined_at=min(kept.joined_at, merged.joined_at),
        removed_at=winner.removed_at,
        group_ids=groups,
    )
