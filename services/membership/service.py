"""Membership's use cases, each one unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountCreated,
    AccountCreationRejected,
    CreateAccount,
)
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded, Role
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import account_exists_problem, normalise_email
from .settings import Settings
from .waiters import Waiters


@dataclass(frozen=True)
class Operation:
    """A request whose outcome may take longer than the HTTP call."""

    id: uuid.UUID
    kind: str
    status: str
    department_id: uuid.UUID
    requested_by: uuid.UUID
    result: dict[str, Any] | None
    problem: dict[str, Any] | None


def _operation(row: Any) -> Operation:
    return Operation(
        row.id, row.kind, row.status, row.department_id, row.requested_by, row.result, row.problem
    )


class Membership:
    """Membership's use cases; bound to the engine when the service starts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.waiters = Waiters()
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """Membership's database."""
        assert self._engine is not None, "not bound to a runtime yet"
        return self._engine

    @engine.setter
    def engine(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def uow(self) -> UnitOfWork:
        """A unit of work on membership's database."""
        return UnitOfWork(self.engine, "membership")

    # -- requests -----------------------------------------------------------------

    async def create_department(
        self, *, name: str, admin_name: str, admin_email: str, requested_by: uuid.UUID
    ) -> tuple[uuid.UUID, Operation]:
        """A department, and a request for its first admin's account."""
        department_id = uuid.uuid4()
        operation_id = uuid.uuid4()
        async with self.uow() as uow:
            await store.insert_department(uow.conn, department_id, name)
            uow.emit(DepartmentCreated(department_id=department_id, name=name), key=department_id)
            await self._request_account(
                uow,
                operation_id=operation_id,
                kind="create_department",
                department_id=department_id,
                requested_by=requested_by,
                name=admin_name,
                email=admin_email,
                role="admin",
            )
            await uow.commit()
        return department_id, await self.wait_for(operation_id)

    async def add_member(
        self,
        *,
        department_id: uuid.UUID,
        name: str,
        email: str,
        role: Role,
        requested_by: uuid.UUID,
    ) -> Operation:
        """Ask identity for a new account; the membership follows when it exists."""
        operation_id = uuid.uuid4()
        async with self.uow() as uow:
            await self._request_account(
                uow,
                operation_id=operation_id,
                kind="add_member",
                department_id=department_id,
                requested_by=requested_by,
                name=name,
                email=email,
                role=role,
            )
            await uow.commit()
        return await self.wait_for(operation_id)

    async def _request_account(
        self,
        uow: UnitOfWork,
        *,
        operation_id: uuid.UUID,
        kind: str,
        department_id: uuid.UUID,
        requested_by: uuid.UUID,
        name: str,
        email: str,
        role: str,
    ) -> None:
        await store.insert_operation(
            uow.conn,
            operation_id=operation_id,
            kind=kind,
            department_id=department_id,
            requested_by=requested_by,
            request={"name": name, "email": email, "role": role},
        )
        uow.emit(
            CreateAccount(
                request_id=operation_id, email=email, name=name, department_id=department_id
            ),
            key=normalise_email(email),
        )

    async def wait_for(self, operation_id: uuid.UUID) -> Operation:
        """The operation once it completes, or as it stands after ``sync_wait_s``."""

        async def done() -> bool:
            op = await self.operation(operation_id)
            return op is not None and op.status != "pending"

        await self.waiters.wait(operation_id, done, self.settings.sync_wait_s)
        op = await self.operation(operation_id)
        assert op is not None
        return op

    async def operation(self, operation_id: uuid.UUID) -> Operation | None:
        """An operation by id."""
        async with self.engine.connect() as conn:
            row = await store.operation(conn, operation_id)
        return _operation(row) if row else None

    async def member(self, department_id: uuid.UUID, account_id: uuid.UUID) -> Any:
        """A current member's row, if any."""
        async with self.engine.connect() as conn:
            return await store.membership(conn, department_id, account_id)

    # -- identity's answers -------------------------------------------------------

    async def on_account_created(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountCreated
    ) -> None:
        """Identity made the account: the membership follows."""
        if event.request_id is None:
            return
        await self._join(uow, event.request_id, event.account_id)

    async def on_account_rejected(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountCreationRejected
    ) -> None:
        """Identity refused: the add fails; a department's first admin joins with their account."""
        row = await store.operation(uow.conn, event.request_id, lock=True)
        if row is None or row.status != "pending":
            return
        if row.kind == "create_department" and event.existing_account_id is not None:
            await self._join(uow, event.request_id, event.existing_account_id)
            return
        await store.complete_operation(
            uow.conn,
            row.id,
            status="failed",
            problem=account_exists_problem(),
            now=datetime.now(UTC),
        )
        uow.after_commit(lambda: self.waiters.notify(row.id))

    async def _join(self, uow: UnitOfWork, operation_id: uuid.UUID, account_id: uuid.UUID) -> None:
        row = await store.operation(uow.conn, operation_id, lock=True)
        if row is None or row.status != "pending":
            return
        request = row.request
        now = datetime.now(UTC)
        if await store.insert_membership(
            uow.conn,
            department_id=row.department_id,
            account_id=account_id,
            name=request["name"],
            email=request["email"],
            role=request["role"],
            joined_at=now,
        ):
            uow.emit(
                MemberAdded(
                    department_id=row.department_id,
                    account_id=account_id,
                    name=request["name"],
                    email=request["email"],
                    role=request["role"],
                    joined_at=now,
                    added_by=None if row.kind == "create_department" else row.requested_by,
                    via="operator" if row.kind == "create_department" else "admin_add",
                ),
                key=row.department_id,
            )
        await store.complete_operation(
            uow.conn, row.id, status="succeeded", result={"account_id": str(account_id)}, now=now
        )
        uow.after_commit(lambda: self.waiters.notify(row.id))
