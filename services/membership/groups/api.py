"""HTTP surface of groups."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from prodigy_users.runtime.openapi import raises

from ..deps import DepartmentAdmin, GroupsService
from ..errors import GroupNameTaken, GroupNotFound, MemberNotFound
from ..schemas import Named

router = APIRouter()


class GroupCreate(Named):
    """A new group."""


class GroupPublic(BaseModel):
    """A group."""

    group_id: uuid.UUID
    name: str
    member_count: int


class GroupsPage(BaseModel):
    """The department's groups."""

    items: list[GroupPublic]


def _group(row: Any) -> GroupPublic:
    return GroupPublic(group_id=row.id, name=row.name, member_count=row.member_count)


@router.post(
    "/v1/departments/{dept}/groups", status_code=201, operation_id="create_group", tags=["groups"]
)
@raises(GroupNameTaken)
async def create_group(
    dept: uuid.UUID, body: GroupCreate, _: DepartmentAdmin, groups: GroupsService
) -> GroupPublic:
    """Create a group."""
    return _group(await groups.create(dept, body.name))


@router.get("/v1/departments/{dept}/groups", operation_id="list_groups", tags=["groups"])
async def list_groups(dept: uuid.UUID, _: DepartmentAdmin, groups: GroupsService) -> GroupsPage:
    """The department's groups."""
    return GroupsPage(items=[_group(r) for r in await groups.listing(dept)])


@router.patch("/v1/departments/{dept}/groups/{group}", operation_id="rename_group", tags=["groups"])
@raises(GroupNotFound, GroupNameTaken)
async def rename_group(
    dept: uuid.UUID, group: uuid.UUID, body: GroupCreate, _: DepartmentAdmin, groups: GroupsService
) -> GroupPublic:
    """Rename a group."""
    return _group(await groups.rename(dept, group, body.name))


@router.delete(
    "/v1/departments/{dept}/groups/{group}",
    status_code=204,
    operation_id="delete_group",
    tags=["groups"],
)
@raises(GroupNotFound)
async def delete_group(
    dept: uuid.UUID, group: uuid.UUID, _: DepartmentAdmin, groups: GroupsService
) -> Response:
    """Delete a group; its members stay in the department."""
    await groups.delete(dept, group)
    return Response(status_code=204)


@router.put(
    "/v1/departments/{dept}/groups/{group}/members/{account}",
    status_code=204,
    operation_id="add_group_member",
    tags=["groups"],
)
@raises(GroupNotFound, MemberNotFound)
async def add_group_member(
    dept: uuid.UUID, group: uuid.UUID, account: uuid.UUID, _: DepartmentAdmin, groups: GroupsService
) -> Response:
    """Put a member in a group."""
    await groups.add_member(dept, group, account)
    return Response(status_code=204)


@router.delete(
    "/v1/departments/{dept}/groups/{group}/members/{account}",
    status_code=204,
    operation_id="remove_group_member",
    tags=["groups"],
)
@raises(GroupNotFound, MemberNotFound)
async def remove_group_member(
    dept: uuid.UUID, group: uuid.UUID, account: uuid.UUID, _: DepartmentAdmin, groups: GroupsService
) -> Response:
    """Take a member out of a group."""
    await groups.remove_member(dept, group, account)
    return Response(status_code=204)
