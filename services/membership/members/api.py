"""HTTP surface of members: add a person, follow the request, change and remove members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.auth import CurrentPrincipal, MaybePrincipal
from prodigy_users.runtime.errors import InvalidInput
from prodigy_users.runtime.idempotency import current_key
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.problems import MEDIA_TYPE
from prodigy_users.runtime.text import Email, Name, Text

from ..deps import (
    DepartmentAdmin,
    LifecycleService,
    MembersService,
    NamesService,
    OperationsService,
)
from ..errors import (
    AccountExists,
    AlreadyMember,
    EmployeeIdTaken,
    LastAdmin,
    MemberNotFound,
    OperationNotFound,
)
from ..schemas import Named
from .requests import Operation
from .service import AccountMembership, Members, MemberView

router = APIRouter()


class MemberCreate(Named):
    """A person to add: an account is created for them and they get a credentials email."""

    email: Email = Field(examples=["ana.lima@example.org"])
    role: Role = Field(examples=["member"])


class MemberPublic(BaseModel):
    """A member of a department."""

    department_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    email: str
    role: str
    status: str
    employee_id: str | None
    joined_at: datetime
    groups: list[uuid.UUID] = Field(default=[], description="Ids of their groups.")


class MyMembership(BaseModel):
    """A department the caller is a current member of, with their standing there."""

    department_id: uuid.UUID
    department_name: str = Field(examples=["Springfield EMS"])
    role: str = Field(description="`admin`, `officer` or `member`.", examples=["admin"])
    status: str = Field(description="`active` or `inactive`.", examples=["active"])
    joined_at: datetime

    @classmethod
    def of(cls, found: AccountMembership) -> MyMembership:
        """The public shape of one of the caller's memberships."""
        return cls(
            department_id=found.department_id,
            department_name=found.department_name,
            role=found.role,
            status=found.status,
            joined_at=found.joined_at,
        )


class MyMemberships(BaseModel):
    """The caller's current memberships, by department name (a person has a few: no pages)."""

    items: list[MyMembership]


class OperationPublic(BaseModel):
    """Where a request that took longer than the call stands."""

    id: uuid.UUID
    kind: str
    status: Literal["pending", "awaiting_confirmation", "succeeded", "failed"]
    result: dict[str, Any] | None = None
    member: MemberPublic | None = None
    problem: dict[str, Any] | None = None


class MemberUpdate(BaseModel):
    """What to change about a member; absent fields stay as they are."""

    role: Role | None = None
    status: Literal["active", "inactive"] | None = None
    employee_id: Text | None = Field(default=None, max_length=100)
    name: Name | None = Field(
        default=None,
        description=(
            "The person's full name (a typo fix). It belongs to their account, not to "
            "this department: it changes in every department they belong to."
        ),
        examples=["Ana Lima"],
    )


# What the answer says when an admin changes a member's name.
NAME_IS_THE_ACCOUNTS = (
    "The name belongs to the person's account: it changed in every department they belong to."
)


class MemberUpdated(MemberPublic):
    """A member after an update, and what the update means beyond this department."""

    notes: list[str] = Field(
        default=[],
        description="What the change also did: a new name shows in every department.",
        examples=[[NAME_IS_THE_ACCOUNTS]],
    )


def member_public(view: MemberView) -> MemberPublic:
    """A member as the API shows them."""
    row = view.row
    return MemberPublic(
        department_id=row.department_id,
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        role=row.role,
        status=row.status,
        employee_id=row.employee_id,
        joined_at=row.joined_at,
        groups=view.groups,
    )


def accepted(op: Operation, extra: dict[str, Any] | None = None) -> JSONResponse:
    """202 naming the operation to poll."""
    url = f"/v1/operations/{op.id}"
    body = {"operation_id": str(op.id), "operation_url": url, "status": op.status, **(extra or {})}
    return JSONResponse(body, status_code=202, headers={"Location": url})


def failed(op: Operation) -> JSONResponse:
    """The problem a failed operation ended with, as the answer."""
    assert op.problem is not None
    return JSONResponse(op.problem, status_code=op.problem["status"], media_type=MEDIA_TYPE)


async def operation_public(members: Members, op: Operation) -> OperationPublic:
    """An operation as the API shows it (with the member it made, once it succeeded)."""
    member = None
    if op.status == "succeeded" and op.result:
        row = await members.current(op.department_id, uuid.UUID(op.result["account_id"]))
        member = member_public(MemberView(row, [])) if row else None
    return OperationPublic.model_validate(
        {
            "id": op.id,
            "kind": op.kind,
            "status": op.status,
            "result": op.result,
            "member": member,
            "problem": op.problem,
        }
    )


@router.post(
    "/v1/departments/{dept}/members",
    status_code=201,
    operation_id="add_member",
    tags=["members"],
    responses={
        202: {"description": "Accepted; poll `operation_url` for the outcome."},
        409: {
            "description": "An account with this email already exists (`/account-exists`), "
            "or the person is already a member here (`/already-member`, with their "
            "`account_id`)."
        },
    },
)
@raises(AlreadyMember, AccountExists)
async def add_member(
    dept: uuid.UUID, body: MemberCreate, admin: DepartmentAdmin, members: MembersService
) -> Any:
    """Add a person: a new account and membership, and a credentials email to them."""
    op = await members.add(
        department_id=dept,
        name=body.name,
        email=str(body.email),
        role=body.role,
        requested_by=admin.account_id,
        idempotency_key=current_key(),
    )
    if op.status == "pending":
        return accepted(op)
    if op.status == "failed":
        return failed(op)
    public = await operation_public(members, op)
    assert public.member is not None
    return JSONResponse(public.member.model_dump(mode="json"), status_code=201)


@router.get("/v1/operations/{operation}", operation_id="get_operation", tags=["operations"])
@raises(OperationNotFound)
async def get_operation(
    operation: uuid.UUID,
    principal: MaybePrincipal,
    operations: OperationsService,
    members: MembersService,
) -> OperationPublic:
    """The outcome of a request answered with 202 (only its requester may read it).

    A registration's operation has no signed-in requester: its unguessable id is the key.
    """
    op = await operations.get(operation)
    if op is None or not (
        op.requested_by is None
        or (principal is not None and op.requested_by == principal.account_id)
    ):
        raise OperationNotFound()
    return await operation_public(members, op)


@router.patch(
    "/v1/departments/{dept}/members/{account}", operation_id="update_member", tags=["members"]
)
@raises(MemberNotFound, LastAdmin, EmployeeIdTaken, InvalidInput)
async def update_member(
    dept: uuid.UUID,
    account: uuid.UUID,
    body: MemberUpdate,
    admin: DepartmentAdmin,
    members: MembersService,
    lifecycle: LifecycleService,
    names: NamesService,
) -> MemberUpdated:
    """Change a member's role, status (a reporting flag), employee ID or name.

    The name is the person's account's, so a new name shows in every department they
    belong to (the answer's ``notes`` say so): membership's lists at once, the users
    tables and records once identity has made the change (``account_updated``)."""
    changes: dict[str, Any] = {"role": body.role, "status": body.status}
    if "employee_id" in body.model_fields_set:
        changes["employee_id"] = body.employee_id
    await lifecycle.change(dept, account, admin.account_id, **changes)
    renamed = body.name is not None and await names.rename(
        dept, account, body.name, admin.account_id
    )
    view = member_public(await members.view(dept, account))
    notes = [NAME_IS_THE_ACCOUNTS] if renamed else []
    return MemberUpdated(**view.model_dump(), notes=notes)


@router.delete(
    "/v1/departments/{dept}/members/{account}",
    status_code=204,
    operation_id="remove_member",
    tags=["members"],
)
@raises(MemberNotFound, LastAdmin)
async def remove_member(
    dept: uuid.UUID, account: uuid.UUID, admin: DepartmentAdmin, lifecycle: LifecycleService
) -> Response:
    """Remove a person from the department; their account and records stay."""
    await lifecycle.remove(dept, account, admin.account_id)
    return Response(status_code=204)


@router.post(
    "/v1/departments/{dept}/members/{account}/password-reset",
    status_code=202,
    # Nothing to say but "accepted": documented, and sent, without a body.
    response_class=Response,
    operation_id="reset_member_password",
    tags=["members"],
)
@raises(MemberNotFound)
async def reset_member_password(
    dept: uuid.UUID, account: uuid.UUID, _: DepartmentAdmin, lifecycle: LifecycleService
) -> Response:
    """Email the person a single-use reset link (valid one hour)."""
    await lifecycle.reset_password(dept, account)
    return Response(status_code=202)


@router.get("/v1/me/memberships", operation_id="list_my_memberships", tags=["members"])
async def list_my_memberships(
    principal: CurrentPrincipal, members: MembersService
) -> MyMemberships:
    """The departments the caller is a member of now (removed ones are not listed), with
    their role and status in each, ordered by department name."""
    found = await members.memberships_of(principal.account_id)
    return MyMemberships(items=[MyMembership.of(m) for m in found])
