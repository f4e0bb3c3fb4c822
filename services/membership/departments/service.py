"""Department use cases: a new department with its first admin, and its settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.membership import DepartmentCreated
from prodigy_users.runtime.db import reading

from ..errors import DepartmentNotFound
from ..members.requests import Operation, Operations, earlier_request, request_account
from ..units import unit_of_work
from . import store


@dataclass(frozen=True)
class DepartmentSettings:
    """A department's name and settings, defaults filled in."""

    department_id: uuid.UUID
    name: str
    invitation_ttl_s: int


class Departments:
    """Department use cases."""

    def __init__(
        self, engine: AsyncEngine, operations: Operations, default_invitation_ttl_s: int
    ) -> None:
        self.engine = engine
        self.operations = operations
        self.default_invitation_ttl_s = default_invitation_ttl_s

    async def create(
        self,
        *,
        name: str,
        admin_name: str,
        admin_email: str,
        requested_by: uuid.UUID,
        idempotency_key: str | None = None,
    ) -> tuple[uuid.UUID, Operation]:
        """A department, and a request for its first admin's account (a retry of an
        earlier attempt, same ``idempotency_key``, gets that attempt's department)."""
        department_id = uuid.uuid4()
        operation_id = uuid.uuid4()
        async with unit_of_work(self.engine) as uow:
            earlier = await earlier_request(uow.conn, idempotency_key)
            if earlier is not None:
                department_id, operation_id = earlier.department_id, earlier.id
            else:
                await store.insert_department(uow.conn, department_id, name)
                uow.emit(
                    DepartmentCreated(department_id=department_id, name=name), key=department_id
                )
                await request_account(
                    uow,
                    operation_id=operation_id,
                    kind="create_department",
                    department_id=department_id,
                    requested_by=requested_by,
                    name=admin_name,
                    email=admin_email,
                    role="admin",
                    idempotency_key=idempotency_key,
                )
                await uow.commit()
        return department_id, await self.operations.wait_for(operation_id)

    async def exists(self, department_id: uuid.UUID) -> bool:
        """Whether the department exists."""
        async with reading(self.engine).connect() as conn:
            return await store.department(conn, department_id) is not None

    async def settings(self, department_id: uuid.UUID) -> DepartmentSettings:
        """The department's settings (``DepartmentNotFound`` if there is no such department)."""
        async with reading(self.engine).connect() as conn:
            row = await store.department(conn, department_id)
        if row is None:
            raise DepartmentNotFound()
        return DepartmentSettings(
            row.id, row.name, row.invitation_ttl_s or self.default_invitation_ttl_s
        )

    async def update(
        self, department_id: uuid.UUID, *, invitation_ttl_s: int | None
    ) -> DepartmentSettings:
        """Change the settings given."""
        if invitation_ttl_s is not None:
            async with self.engine.begin() as conn:
                await store.set_invitation_ttl(conn, department_id, invitation_ttl_s)
        return await self.settings(department_id)
