"""Group use cases: groups of a department and who is in them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.membership import (
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberJoinedGroup,
    MemberLeftGroup,
)
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import GroupNameTaken, GroupNotFound, MemberNotFound
from ..members import store as member_store
from ..units import unit_of_work
from . import store
from .rules import group_key


async def _unique_name(write: Awaitable[None], uow: UnitOfWork) -> None:
    """Run ``write`` (a new or changed name) under a savepoint: another admin taking the
    same name a moment ago trips the unique index, which is ``GroupNameTaken`` too."""
    savepoint = await uow.conn.begin_nested()
    try:
        await write
    except IntegrityError as exc:
        await savepoint.rollback()
        raise GroupNameTaken() from exc
    await savepoint.commit()


class Groups:
    """Group use cases."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, department_id: uuid.UUID, name: str) -> Any:
        """A new group."""
        group_id = uuid.uuid4()
        async with unit_of_work(self.engine) as uow:
            if await store.name_taken(uow.conn, department_id, group_key(name), None):
                raise GroupNameTaken()
            await _unique_name(store.insert_group(uow.conn, department_id, group_id, name), uow)
            uow.emit(
                GroupCreated(department_id=department_id, group_id=group_id, name=name),
                key=department_id,
            )
            await uow.commit()
        return await self.get(department_id, group_id)

    async def get(self, department_id: uuid.UUID, group_id: uuid.UUID) -> Any:
        """One group with its member count."""
        for row in await self.listing(department_id):
            if row.id == group_id:
                return row
        raise GroupNotFound()

    async def listing(self, department_id: uuid.UUID) -> list[Any]:
        """Every group of the department."""
        async with self.engine.connect() as conn:
            return await store.listing(conn, department_id)

    async def rename(self, department_id: uuid.UUID, group_id: uuid.UUID, name: str) -> Any:
        """A new name for a group."""
        async with unit_of_work(self.engine) as uow:
            if await store.group(uow.conn, department_id, group_id, lock=True) is None:
                raise GroupNotFound()
            if await store.name_taken(uow.conn, department_id, group_key(name), group_id):
                raise GroupNameTaken()
            await _unique_name(store.rename_group(uow.conn, group_id, name), uow)
            uow.emit(
                GroupRenamed(department_id=department_id, group_id=group_id, name=name),
                key=department_id,
            )
            await uow.commit()
        return await self.get(department_id, group_id)

    async def delete(
        self, department_id: uuid.UUID, group_id: uuid.UUID, by: uuid.UUID | None = None
    ) -> None:
        """Delete a group; its members leave it and stay in the department."""
        async with unit_of_work(self.engine) as uow:
            if await store.group(uow.conn, department_id, group_id, lock=True) is None:
                raise GroupNotFound()
            for account_id in await store.current_members(uow.conn, group_id):
                uow.emit(
                    MemberLeftGroup(
                        department_id=department_id,
                        group_id=group_id,
                        account_id=account_id,
                        changed_by=by,
                    ),
                    key=department_id,
                )
            await store.delete_group(uow.conn, group_id)
            uow.emit(
                GroupDeleted(department_id=department_id, group_id=group_id), key=department_id
            )
            await uow.commit()

    async def _check(
        self, uow: UnitOfWork, department_id: uuid.UUID, group_id: uuid.UUID, account_id: uuid.UUID
    ) -> None:
        if await store.group(uow.conn, department_id, group_id) is None:
            raise GroupNotFound()
        if await member_store.membership(uow.conn, department_id, account_id) is None:
            raise MemberNotFound()

    async def add_member(
        self,
        department_id: uuid.UUID,
        group_id: uuid.UUID,
        account_id: uuid.UUID,
        by: uuid.UUID | None = None,
        import_id: uuid.UUID | None = None,
    ) -> None:
        """Put a member in a group (nothing happens if they are in it); ``by`` the admin
        who asked, ``import_id`` the bulk upload that did (events say who did it)."""
        async with unit_of_work(self.engine) as uow:
            await self._check(uow, department_id, group_id, account_id)
            if await store.add_member(uow.conn, department_id, group_id, account_id):
                uow.emit(
                    MemberJoinedGroup(
                        department_id=department_id,
                        group_id=group_id,
                        account_id=account_id,
                        changed_by=by,
                        import_id=import_id,
                    ),
                    key=department_id,
                )
            await uow.commit()

    async def remove_member(
        self,
        department_id: uuid.UUID,
        group_id: uuid.UUID,
        account_id: uuid.UUID,
        by: uuid.UUID | None = None,
        import_id: uuid.UUID | None = None,
    ) -> None:
        """Take a member out of a group (nothing happens if they are not in it); ``by``
        and ``import_id`` as for ``add_member``."""
        async with unit_of_work(self.engine) as uow:
            await self._check(uow, department_id, group_id, account_id)
            if await store.remove_member(uow.conn, group_id, account_id):
                uow.emit(
                    MemberLeftGroup(
                        department_id=department_id,
                        group_id=group_id,
                        account_id=account_id,
                        changed_by=by,
                        import_id=import_id,
                    ),
                    key=department_id,
                )
            await uow.commit()
