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
from prodigy_users.contracts.membership import DepartmentCreated, Role
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import account_exists_problem, normalise_email
from .joining import join
from .registration import complete_registration
from .settings import Settings
from .waiters import Waiters

# Who requested a registration: nobody signed in. Its operation id is the capability.
ANONYMOUS = uuid.UUID(int=0)


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
        role: str | None,
        password_hash: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        await store.insert_operation(
            uow.conn,
            operation_id=operation_id,
            kind=kind,
            department_id=department_id,
            requested_by=requested_by,
            request={"name": name, "email": email, "role": role, **(extra or {})},
        )
        uow.emit(
            CreateAccount(
                request_id=operation_id,
                email=email,
                name=name,
                department_id=department_id,
                password_hash=password_hash,
            ),
            key=normalise_email(email),
        )

    async def register(
        self,
        *,
        department_id: uuid.UUID,
        name: str,
        email: str,
        password_hash: str,
        via: str,
        token_hash: str,
    ) -> Operation:
        """Someone without an account registers through a link: account first, then join."""
        operation_id = uuid.uuid4()
        async with self.uow() as uow:
            await self._request_account(
                uow,
                operation_id=operation_id,
                kind="register",
                department_id=department_id,
                requested_by=ANONYMOUS,
                name=name,
                email=email,
                role=None,
                password_hash=password_hash,
                extra={"via": via, "token_hash": token_hash},
            )
            await uow.commit()
        return await self.wait_for(operation_id)

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
        """Identity made the account: remember it; a membership it was asked for follows."""
        if event.batch_id is not None:
            return  # an import's account: the batch's answer records it, with the rest
        await store.upsert_account(uow.conn, event.account_id, event.email, event.name)
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
            problem=account_exists_problem(registering=row.kind == "register"),
            now=datetime.now(UTC),
        )
        uow.after_commit(lambda: self.waiters.notify(row.id))

    async def _join(self, uow: UnitOfWork, operation_id: uuid.UUID, account_id: uuid.UUID) -> None:
        row = await store.operation(uow.conn, operation_id, lock=True)
        if row is None or row.status != "pending":
            return
        request = row.request
        now = datetime.now(UTC)
        try:
            if row.kind == "register":
                joined = await complete_registration(uow, request, account_id)
            else:
                joined = await join(
                    uow,
                    department_id=row.department_id,
                    account_id=account_id,
                    name=request["name"],
                    email=request["email"],
                    role=request["role"],
                    via="operator" if row.kind == "create_department" else "admin_add",
                    added_by=None if row.kind == "create_department" else row.requested_by,
                )
        except Problem as problem:
            await store.complete_operation(
                uow.conn, row.id, status="failed", problem=problem.body(), now=now
            )
        else:
            await store.complete_operation(
                uow.conn,
                row.id,
                status="succeeded",
                result={
                    "account_id": str(account_id),
                    "status": joined.status,
                    "role": joined.role,
                },
                now=now,
            )
        uow.after_commit(lambda: self.waiters.notify(row.id))
