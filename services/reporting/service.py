"""Reporting's use cases: apply membership events, answer the users table and record."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import UserRow, UsersPage, UsersQuery, page_of

SERVICE = "reporting"


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


async def role_of(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> str | None:
    """The caller's role in the department, as reporting has heard it."""
    async with engine.connect() as conn:
        return await store.role_of(conn, department_id, account_id)


async def users_page(engine: AsyncEngine, query: UsersQuery) -> UsersPage:
    """One page of the department's users table."""
    async with engine.connect() as conn:
        rows = await store.page_users(conn, query)
    return page_of(rows, query.limit)


async def user_record(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow | None:
    """The person's record in the department, or None if they are not a member there."""
    async with engine.connect() as conn:
        return await store.get_user(conn, department_id, account_id)
