"""A member's life in a department: role, status, employee ID, removal, password reset."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.identity import IssuePasswordReset
from prodigy_users.contracts.membership import (
    EmployeeIdSet,
    MemberRemoved,
    MemberRoleChanged,
    MemberStatusChanged,
    Role,
    Status,
)
from prodigy_users.runtime.uow import UnitOfWork

from ..departments import store as department_store
from ..errors import EmployeeIdTaken, LastAdmin, MemberNotFound
from ..rules import is_last_admin
from ..units import unit_of_work
from . import store

UNSET: Any = object()


class Lifecycle:
    """Member lifecycle use cases."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _current(
        self, uow: UnitOfWork, department_id: uuid.UUID, account_id: uuid.UUID
    ) -> Any:
        row = await store.any_membership(uow.conn, department_id, account_id, lock=True)
        if row is None or row.removed_at is not None:
            raise MemberNotFound()
        return row

    async def _leaves_no_admin(self, uow: UnitOfWork, row: Any) -> bool:
        """Whether taking ``row``'s role away would leave its department without an admin.

        Changes that take an admin away wait for each other on the department's row:
        two admins demoting each other at once would otherwise each count the other
        and both succeed.
        """
        if row.role != "admin":
            return False
        await department_store.lock_department(uow.conn, row.department_id)
        return is_last_admin(row.role, await store.count_admins(uow.conn, row.department_id))

    async def change(
        self,
        department_id: uuid.UUID,
        account_id: uuid.UUID,
        by: uuid.UUID,
        *,
        role: Role | None = None,
        status: Status | None = None,
        employee_id: str | None = UNSET,
        import_id: uuid.UUID | None = None,
    ) -> None:
        """Change what was given; each change is its own event (``import_id``: the bulk
        upload asking, which the events name)."""
        async with unit_of_work(self.engine) as uow:
            row = await self._current(uow, department_id, account_id)
            key = department_id
            if role is not None and role != row.role:
                if await self._leaves_no_admin(uow, row):
                    raise LastAdmin()
                await store.update_membership(uow.conn, department_id, account_id, role=role)
                uow.emit(
                    MemberRoleChanged(
                        department_id=department_id,
                        account_id=account_id,
                        role=role,
                        previous_role=row.role,
                        changed_by=by,
                        import_id=import_id,
                    ),
                    key=key,
                )
            if status is not None and status != row.status:
                await store.update_membership(uow.conn, department_id, account_id, status=status)
                uow.emit(
                    MemberStatusChanged(
                        department_id=department_id,
                        account_id=account_id,
                        status=status,
                        changed_by=by,
                        import_id=import_id,
                    ),
                    key=key,
                )
            if employee_id is not UNSET:
                new_id = (employee_id or "").strip() or None
                if new_id != row.employee_id:
                    await self._set_employee_id(
                        uow, department_id, account_id, new_id, by, import_id
                    )
            await uow.commit()

    async def _set_employee_id(
        self,
        uow: UnitOfWork,
        department_id: uuid.UUID,
        account_id: uuid.UUID,
        employee_id: str | None,
        by: uuid.UUID,
        import_id: uuid.UUID | None = None,
    ) -> None:
        savepoint = await uow.conn.begin_nested()
        try:
            await store.update_membership(
                uow.conn, department_id, account_id, employee_id=employee_id
            )
            await savepoint.commit()
        except IntegrityError as exc:
            await savepoint.rollback()
            raise EmployeeIdTaken() from exc
        uow.emit(
            EmployeeIdSet(
                department_id=department_id,
                account_id=account_id,
                employee_id=employee_id,
                changed_by=by,
                import_id=import_id,
            ),
            key=department_id,
        )

    async def remove(self, department_id: uuid.UUID, account_id: uuid.UUID, by: uuid.UUID) -> None:
        """The person leaves the department; their account and history stay."""
        async with unit_of_work(self.engine) as uow:
            row = await self._current(uow, department_id, account_id)
            if await self._leaves_no_admin(uow, row):
                raise LastAdmin()
            await store.mark_removed(uow.conn, department_id, account_id)
            uow.emit(
                MemberRemoved(department_id=department_id, account_id=account_id, removed_by=by),
                key=department_id,
            )
            await uow.commit()

    async def reset_password(self, department_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """Ask identity to email the person a reset link."""
        async with unit_of_work(self.engine) as uow:
            await self._current(uow, department_id, account_id)
            uow.emit(
                IssuePasswordReset(account_id=account_id, department_id=department_id),
                key=account_id,
            )
            await uow.commit()
