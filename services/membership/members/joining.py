"""Becoming a member: join for the first time, or come back with one's history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from prodigy_users.contracts.membership import (
    MemberAdded,
    MemberRestored,
    Role,
    WelcomeRequested,
)
from prodigy_users.runtime.uow import UnitOfWork

from ..departments import store as department_store
from ..errors import AlreadyMember
from ..groups import store as group_store
from . import store

Via = Literal["admin_add", "operator", "invitation", "registration_link", "import"]


@dataclass(frozen=True)
class Joined:
    """The outcome of a join."""

    department_id: uuid.UUID
    account_id: uuid.UUID
    role: str
    status: Literal["joined", "restored"]
    # Said to someone who registered (they cannot read the department otherwise).
    department_name: str | None = None


async def already_member(uow: UnitOfWork, department_id: uuid.UUID) -> AlreadyMember:
    """A current member used a valid link: say so (by the department's name), change nothing."""
    department = await department_store.department(uow.conn, department_id)
    name = department.name if department else "this department"
    return AlreadyMember(f"You are already a member of {name}.")


async def join(
    uow: UnitOfWork,
    *,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    name: str,
    email: str,
    role: Role | None,
    via: Via,
    added_by: uuid.UUID | None = None,
    invited_email: str | None = None,
    welcome: bool = False,
) -> Joined:
    """Make the account a member; a removed member comes back with groups, ID and role.

    ``role`` None keeps a returning member's old role (new members get ``member``).
    Raises ``AlreadyMember`` for a current member.
    """
    now = datetime.now(UTC)
    existing = await store.any_membership(uow.conn, department_id, account_id, lock=True)
    if existing is not None and existing.removed_at is None:
        raise await already_member(uow, department_id)
    if existing is not None:
        back_role: Role = role or existing.role
        await store.update_membership(
            uow.conn, department_id, account_id, removed_at=None, role=back_role, name=name
        )
        uow.emit(
            MemberRestored(
                department_id=department_id,
                account_id=account_id,
                name=name,
                email=existing.email,
                role=back_role,
                status=existing.status,
                employee_id=existing.employee_id,
                group_ids=await group_store.groups_of(uow.conn, department_id, account_id),
                restored_at=now,
                via=via if via != "operator" else "admin_add",
                restored_by=added_by,
            ),
            key=department_id,
        )
        outcome = Joined(department_id, account_id, back_role, "restored")
    else:
        new_role: Role = role or "member"
        inserted = await store.insert_membership(
            uow.conn,
            department_id=department_id,
            account_id=account_id,
            name=name,
            email=email,
            role=new_role,
            joined_at=now,
            invited_email=invited_email,
        )
        if not inserted:
            # Joined a moment ago through another link (the insert waited for it).
            raise await already_member(uow, department_id)
        uow.emit(
            MemberAdded(
                department_id=department_id,
                account_id=account_id,
                name=name,
                email=email,
                role=new_role,
                joined_at=now,
                added_by=added_by,
                via=via,
            ),
            key=department_id,
        )
        outcome = Joined(department_id, account_id, new_role, "joined")
    if welcome:
        uow.emit(
            WelcomeRequested(
                department_id=department_id, account_id=account_id, email=email, name=name
            ),
            key=department_id,
        )
    return outcome
