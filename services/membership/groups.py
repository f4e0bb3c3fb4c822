"""Groups in a department and who is in them."""

from __future__ import annotations

import uuid
from typing import Any

from prodigy_users.contracts.membership import (
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberJoinedGroup,
    MemberLeftGroup,
)
from prodigy_users.runtime.problems import Problem
from prodigy_users.runtime.uow import UnitOfWork

from . import store, store_groups
from .domain import group_key
from .lifecycle import member_not_found
from .service import Membership


def group_not_found() -> Problem:
    """404 for an unknown group."""
    return Problem(404, "group-not-found", "Unknown group", "No such group in this department.")


def name_taken() -> Problem:
    """409 for a duplicate group name."""
    return Problem(
        409,
        "group-name-taken",
        "Group name in use",
        "This department already has a group with that name.",
        errors=[{"field": "name", "message": "already used in this department"}],
    )


class Groups:
    """Group use cases."""

    def __init__(self, core: Membership) -> None:
        self.core = core

    async def create(self, department_id: uuid.UUID, name: str) -> Any:
        """A new group."""
        group_id = uuid.uuid4()
        async with self.core.uow() as uow:
            if await store_groups.name_taken(uow.conn, department_id, group_key(name), None):
                raise name_taken()
            await uow.conn.execute(
                store_groups.groups.insert().values(
                    id=group_id,
                    department_id=department_id,
                    name=name,
                    name_normalised=group_key(name),
                )
            )
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
        raise group_not_found()

    async def listing(self, department_id: uuid.UUID) -> list[Any]:
        """Every group of the department."""
        async with self.core.engine.connect() as conn:
            return await store_groups.listing(conn, department_id)

    async def rename(self, department_id: uuid.UUID, group_id: uuid.UUID, name: str) -> Any:
        """A new name for a group."""
        async with self.core.uow() as uow:
            if await store_groups.group(uow.conn, department_id, group_id, lock=True) is None:
                raise group_not_found()
            if await store_groups.name_taken(uow.conn, department_id, group_key(name), group_id):
                raise name_taken()
            await uow.conn.execute(
                store_groups.groups.update()
                .where(store_groups.groups.c.id == group_id)
                .values(name=name, name_normalised=group_key(name))
            )
            uow.emit(
                GroupRenamed(department_id=department_id, group_id=group_id, name=name),
                key=department_id,
            )
            await uow.commit()
        return await self.get(department_id, group_id)

    async def delete(self, department_id: uuid.UUID, group_id: uuid.UUID) -> None:
        """Delete a group; its members leave it and stay in the department."""
        async with self.core.uow() as uow:
            if await store_groups.group(uow.conn, department_id, group_id, lock=True) is None:
                raise group_not_found()
            for account_id in await store_groups.current_members(uow.conn, group_id):
                uow.emit(
                    MemberLeftGroup(
                        department_id=department_id, group_id=group_id, account_id=account_id
                    ),
                    key=department_id,
                )
            await uow.conn.execute(
                store_groups.groups.delete().where(store_groups.groups.c.id == group_id)
            )
            uow.emit(
                GroupDeleted(department_id=department_id, group_id=group_id), key=department_id
            )
            await uow.commit()

    async def _check(
        self, uow: UnitOfWork, department_id: uuid.UUID, group_id: uuid.UUID, account_id: uuid.UUID
    ) -> None:
        if await store_groups.group(uow.conn, department_id, group_id) is None:
            raise group_not_found()
        if await store.membership(uow.conn, department_id, account_id) is None:
            raise member_not_found()

    async def add_member(
        self, department_id: uuid.UUID, group_id: uuid.UUID, account_id: uuid.UUID
    ) -> None:
        """Put a member in a group (nothing happens if they are in it)."""
        async with self.core.uow() as uow:
            await self._check(uow, department_id, group_id, account_id)
            if await store_groups.add_member(uow.conn, department_id, group_id, account_id):
                uow.emit(
                    MemberJoinedGroup(
                        department_id=department_id, group_id=group_id, account_id=account_id
                    ),
                    key=department_id,
                )
            await uow.commit()

    async def remove_member(
        self, department_id: uuid.UUID, group_id: uuid.UUID, account_id: uuid.UUID
    ) -> None:
        """Take a member out of a group (nothing happens if they are not in it)."""
        async with self.core.uow() as uow:
            await self._check(uow, department_id, group_id, account_id)
            if await store_groups.remove_member(uow.conn, group_id, account_id):
                uow.emit(
                    MemberLeftGroup(
                        department_id=department_id, group_id=group_id, account_id=account_id
                    ),
                    key=department_id,
                )
            await uow.commit()
