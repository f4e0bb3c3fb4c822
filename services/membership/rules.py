"""Rules every membership feature shares: roles, who may manage whom, the last admin,
and who an action is attributed to. No I/O."""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.auth import OPERATOR_SUBJECT

ROLES: tuple[str, ...] = get_args(Role)
MANAGING_ROLES = frozenset({"admin"})

# pending (identity has not answered) -> awaiting_confirmation (a registration whose
# address must be confirmed first) -> succeeded | failed.
OperationStatus = Literal["pending", "awaiting_confirmation", "succeeded", "failed"]
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "awaiting_confirmation"})


def can_manage_members(role: str | None) -> bool:
    """Only department admins add, change or remove people."""
    return role in MANAGING_ROLES


def is_last_admin(role: str, admins_in_department: int) -> bool:
    """A department always keeps at least one admin."""
    return role == "admin" and admins_in_department <= 1


def acting_admin(requested_by: uuid.UUID | None) -> uuid.UUID | None:
    """Who events name as having done something: the admin who asked, or nobody when a
    platform operator (no account of their own) or someone registering asked."""
    return None if requested_by is None or requested_by == OPERATOR_SUBJECT else requested_by
