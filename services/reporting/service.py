"""Reporting's use cases: apply membership events, answer the users table and record."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberAdded,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import HistoryEntry, UserRow, UsersPage, UsersQuery, history_event, page_of

SERVICE = "reporting"


async def _history(
    uow: UnitOfWork,
    envelope: RawEnvelope,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    **details: Any,
) -> None:
    await store.add_history(
        uow.conn,
        envelope.event_id,
        department_id,
        account_id,
        envelope.occurred_at,
        history_event(envelope.type),
        {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in details.items()},
    )


async def record_department(
    uow: UnitOfWork, envelope: RawEnvelope, payload: DepartmentCreated
) -> None:
    """A department exists."""
    await store.upsert_department(
        uow.conn, payload.department_id, payload.name, envelope.occurred_at
    )


async def record_member(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberAdded) -> None:
    """A person joined a department: their row in its users table."""
    await store.upsert_member(uow.conn, payload, envelope.occurred_at)
    await _history(
        uow, envelope, payload.department_id, payload.account_id, role=payload.role, via=payload.via
    )


async def record_role(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberRoleChanged) -> None:
    """A member's new role (a demoted officer loses the reports with it)."""
    await store.update_member(
        uow.conn, payload.department_id, payload.account_id, envelope.occurred_at, role=payload.role
    )
    await _history(
        uow,
        envelope,
        payload.department_id,
        payload.account_id,
        role=payload.role,
        previous_role=payload.previous_role,
    )


async def record_status(
    uow: UnitOfWork, envelope: RawEnvelope, payload: MemberStatusChanged
) -> None:
    """A member marked active or inactive."""
    await store.update_member(
        uow.conn,
        payload.department_id,
        payload.account_id,
        envelope.occurred_at,
        status=payload.status,
    )
    await _history(uow, envelope, payload.department_id, payload.account_id, status=payload.status)


async def record_employee_id(
    uow: UnitOfWork, envelope: RawEnvelope, payload: EmployeeIdSet
) -> None:
    """A member's employee ID set or cleared."""
    await store.update_member(
        uow.conn,
        payload.department_id,
        payload.account_id,
        envelope.occurred_at,
        employee_id=payload.employee_id,
    )
    await _history(
        uow, envelope, payload.department_id, payload.account_id, employee_id=payload.employee_id
    )


async def record_removal(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberRemoved) -> None:
    """A person left: their row stays, hidden, with its groups and ID for a return."""
    await store.update_member(
        uow.conn,
        payload.department_id,
        payload.account_id,
        envelope.occurred_at,
        removed_at=envelope.occurred_at,
    )
    await _history(uow, envelope, payload.department_id, payload.account_id)


async def record_restore(uow: UnitOfWork, envelope: RawEnvelope, payload: MemberRestored) -> None:
    """A removed person is back, as the event says (role, status, ID, groups)."""
    await store.restore_member(uow.conn, payload, envelope.occurred_at)
    await _history(
        uow, envelope, payload.department_id, payload.account_id, role=payload.role, via=payload.via
    )


async def record_group(
    uow: UnitOfWork, envelope: RawEnvelope, payload: GroupCreated | GroupRenamed
) -> None:
    """A group and its current name (created or renamed)."""
    await store.upsert_group(
        uow.conn, payload.department_id, payload.group_id, payload.name, envelope.occurred_at
    )


async def record_group_deleted(
    uow: UnitOfWork, envelope: RawEnvelope, payload: GroupDeleted
) -> None:
    """A group is gone: out of every row of the department, removed people's too."""
    await store.leave_group(uow.conn, payload.department_id, payload.group_id, envelope.occurred_at)
    await store.delete_group(uow.conn, payload.group_id)


async def record_joined_group(
    uow: UnitOfWork, envelope: RawEnvelope, payload: MemberJoinedGroup
) -> None:
    """A member put in a group."""
    await store.join_group(
        uow.conn, payload.department_id, payload.account_id, payload.group_id, envelope.occurred_at
    )
    await _history(
        uow, envelope, payload.department_id, payload.account_id, group_id=payload.group_id
    )


async def record_left_group(
    uow: UnitOfWork, envelope: RawEnvelope, payload: MemberLeftGroup
) -> None:
    """A member taken out of a group."""
    await store.leave_group(
        uow.conn,
        payload.department_id,
        payload.group_id,
        envelope.occurred_at,
        account_id=payload.account_id,
    )
    await _history(
        uow, envelope, payload.department_id, payload.account_id, group_id=payload.group_id
    )


async def role_of(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The caller's role in the department, as reporting has heard it (None once removed)."""
    async with engine.connect() as conn:
        return await store.role_of(conn, department_id, account_id)


async def users_page(engine: AsyncEngine, query: UsersQuery) -> UsersPage:
    """One page of the department's users table."""
    async with engine.connect() as conn:
        rows = await store.page_users(conn, query)
    return page_of(rows, query.limit)


async def user_record(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> tuple[UserRow, list[HistoryEntry]] | None:
    """The person's record and history in the department, or None if not a member there."""
    async with engine.connect() as conn:
        row = await store.get_user(conn, department_id, account_id)
        if row is None:
            return None
        return row, await store.history_of(conn, department_id, account_id)
