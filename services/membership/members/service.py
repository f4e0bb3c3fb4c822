"""Adding people: an admin's add, and the joins that follow identity's answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.db import reading
from prodigy_users.runtime.uow import UnitOfWork

from ..departments import store as department_store
from ..errors import (
    ACCOUNT_EXISTS_REGISTERING,
    AlreadyMember,
    DepartmentNotFound,
    MemberNotFound,
    NotAdministrator,
)
from ..groups import store as group_store
from ..rules import can_manage_members
from ..units import unit_of_work
from . import store
from .joining import Joined, Via, join
from .requests import (
    Completion,
    Ended,
    Ending,
    Join,
    Operation,
    Operations,
    earlier_request,
    request_account,
)


@dataclass(frozen=True)
class AccountMembership:
    """One department an account is a current member of, as that account sees it."""

    department_id: uuid.UUID
    department_name: str
    role: str
    status: str
    joined_at: datetime


@dataclass(frozen=True)
class MemberView:
    """A current member and their groups."""

    row: Any
    groups: list[uuid.UUID]


class Members:
    """Adding a person and reading members."""

    def __init__(self, engine: AsyncEngine, operations: Operations) -> None:
        self.engine = engine
        self.operations = operations

    async def add(
        self,
        *,
        department_id: uuid.UUID,
        name: str,
        email: str,
        role: Role,
        requested_by: uuid.UUID,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Ask identity for a new account; the membership follows when it exists.

        ``AlreadyMember`` if the address is a current member's here. A retry of an
        earlier attempt (same ``idempotency_key``) follows that attempt's request.
        """
        operation_id = uuid.uuid4()
        async with unit_of_work(self.engine) as uow:
            earlier = await earlier_request(uow.conn, idempotency_key)
            if earlier is not None:
                operation_id = earlier.id
            else:
                await _refuse_current_member(uow.conn, department_id, email)
                await request_account(
                    uow,
                    operation_id=operation_id,
                    kind="add_member",
                    department_id=department_id,
                    requested_by=requested_by,
                    name=name,
                    email=email,
                    role=role,
                    idempotency_key=idempotency_key,
                )
                await uow.commit()
        return await self.operations.wait_for(operation_id)

    async def check_admin(self, department_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """``DepartmentNotFound`` or ``NotAdministrator`` unless the account administers
        the department."""
        async with reading(self.engine).connect() as conn:
            exists, role = await store.standing(conn, department_id, account_id)
        if not exists:
            raise DepartmentNotFound()
        if not can_manage_members(role):
            raise NotAdministrator()

    async def current(self, department_id: uuid.UUID, account_id: uuid.UUID) -> Any:
        """A current member's row, if any."""
        async with reading(self.engine).connect() as conn:
            return await store.membership(conn, department_id, account_id)

    async def memberships_of(self, account_id: uuid.UUID) -> list[AccountMembership]:
        """The departments the account is a current member of (removed ones left out), by
        department name."""
        async with reading(self.engine).connect() as conn:
            rows = await store.memberships_of(conn, account_id)
        return [
            AccountMembership(r.department_id, r.department_name, r.role, r.status, r.joined_at)
            for r in rows
        ]

    async def view(self, department_id: uuid.UUID, account_id: uuid.UUID) -> MemberView:
        """A current member with their groups (``MemberNotFound`` otherwise)."""
        async with reading(self.engine).connect() as conn:
            row = await store.membership(conn, department_id, account_id)
            if row is None:
                raise MemberNotFound()
            groups = await group_store.groups_of(conn, department_id, account_id)
        return MemberView(row, groups)


async def _refuse_current_member(
    conn: AsyncConnection, department_id: uuid.UUID, email: str
) -> None:
    """``AlreadyMember`` if the address is a current member's here (their membership's
    email or their account's): the admin is sent to their record, not off to invite
    someone who is already there. A removed member's address is not refused here."""
    found = await store.current_members_by_email(conn, department_id, [email_key(email)])
    if not found:
        return
    account_id = next(iter(found.values())).account_id
    member = await store.membership(conn, department_id, account_id)
    department = await department_store.department(conn, department_id)
    # As their record has them (the address typed may be their account's other one).
    who = f"{member.name} ({member.email})" if member is not None else email
    where = department.name if department is not None else "this department"
    raise AlreadyMember(f"{who} is already a member of {where}.", account_id=account_id)


def _join_as_requested(via: Via, *, attributed: bool) -> Join:
    """Join the account with the name, email and role the request carried."""

    async def complete(uow: UnitOfWork, operation: Any, account_id: uuid.UUID) -> Joined:
        request = operation.request
        return await join(
            uow,
            department_id=operation.department_id,
            account_id=account_id,
            name=request["name"],
            email=request["email"],
            role=request["role"],
            via=via,
            added_by=operation.requested_by if attributed else None,
        )

    return complete


class RegistrationEnds(Protocol):
    """What finishes registrations (the invitations feature: it knows the links)."""

    async def complete(self, uow: UnitOfWork, operation: Any, account_id: uuid.UUID) -> Joined:
        """Let the person in."""
        ...

    async def ended(self, uow: UnitOfWork, operation: Any, ending: Ending) -> None:
        """The registration ended without a member."""


def completions(registrations: RegistrationEnds) -> dict[str, Completion]:
    """How each kind of request ends once identity has answered (registrations are
    finished by the invitations feature, which knows links and invitations)."""
    complete_registration: Join = registrations.complete
    ended: Ended = registrations.ended
    return {
        "add_member": Completion(_join_as_requested("admin_add", attributed=True)),
        # A department's first admin who already has an account joins with it.
        "create_department": Completion(
            _join_as_requested("operator", attributed=False), existing_joins=True
        ),
        "register": Completion(
            complete_registration, exists_detail=ACCOUNT_EXISTS_REGISTERING, ended=ended
        ),
    }
