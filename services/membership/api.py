"""Membership's HTTP surface."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field, field_validator

from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.auth import MaybePrincipal
from prodigy_users.runtime.problems import MEDIA_TYPE, Problem

from . import store, store_groups
from .deps import DepartmentAdmin, LifecycleService, MembershipService, Operator
from .lifecycle import member_not_found
from .service import ANONYMOUS, Membership, Operation

router = APIRouter()


class _Named(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Ana Lima"])

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value


class MemberCreate(_Named):
    """A person to add: an account is created for them and they get a credentials email."""

    email: EmailStr = Field(examples=["ana.lima@example.org"])
    role: Role = Field(examples=["member"])


class AdminCreate(_Named):
    """A department's first admin."""

    email: EmailStr


class DepartmentCreate(_Named):
    """A new department and its first admin."""

    admin: AdminCreate


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
    groups: list[uuid.UUID] = Field(default_factory=list, description="Ids of their groups.")


class OperationPublic(BaseModel):
    """Where a request that took longer than the call stands."""

    id: uuid.UUID
    kind: str
    status: Literal["pending", "succeeded", "failed"]
    result: dict[str, Any] | None = None
    member: MemberPublic | None = None
    problem: dict[str, Any] | None = None


def _member(row: Any, groups: list[uuid.UUID] | None = None) -> MemberPublic:
    return MemberPublic(
        department_id=row.department_id,
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        role=row.role,
        status=row.status,
        employee_id=row.employee_id,
        joined_at=row.joined_at,
        groups=groups or [],
    )


def _accepted(op: Operation, extra: dict[str, Any] | None = None) -> JSONResponse:
    url = f"/v1/operations/{op.id}"
    body = {"operation_id": str(op.id), "operation_url": url, "status": op.status, **(extra or {})}
    return JSONResponse(body, status_code=202, headers={"Location": url})


async def _operation_public(membership: Membership, op: Operation) -> OperationPublic:
    member = None
    if op.status == "succeeded" and op.result:
        row = await membership.member(op.department_id, uuid.UUID(op.result["account_id"]))
        member = _member(row) if row else None
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


def _failed(op: Operation) -> JSONResponse:
    assert op.problem is not None
    return JSONResponse(op.problem, status_code=op.problem["status"], media_type=MEDIA_TYPE)


@router.post(
    "/v1/departments",
    status_code=201,
    operation_id="create_department",
    tags=["departments"],
    responses={202: {"description": "Accepted; the admin's account is still being made."}},
)
async def create_department(
    body: DepartmentCreate, principal: Operator, membership: MembershipService
) -> Any:
    """Platform operators: a department and its first admin (an existing account joins as admin)."""
    department_id, op = await membership.create_department(
        name=body.name,
        admin_name=body.admin.name,
        admin_email=str(body.admin.email),
        requested_by=principal.account_id,
    )
    if op.status == "pending":
        return _accepted(op, {"department_id": str(department_id)})
    if op.status == "failed":
        return _failed(op)
    assert op.result is not None
    return {
        "department_id": str(department_id),
        "name": body.name,
        "admin_account_id": op.result["account_id"],
    }


@router.post(
    "/v1/departments/{dept}/members",
    status_code=201,
    operation_id="add_member",
    tags=["members"],
    responses={
        202: {"description": "Accepted; poll `operation_url` for the outcome."},
        409: {"description": "An account with this email already exists (`/account-exists`)."},
    },
)
async def add_member(
    dept: uuid.UUID, body: MemberCreate, admin: DepartmentAdmin, membership: MembershipService
) -> Any:
    """Add a person: a new account and membership, and a credentials email to them."""
    op = await membership.add_member(
        department_id=dept,
        name=body.name,
        email=str(body.email),
        role=body.role,
        requested_by=admin.account_id,
    )
    if op.status == "pending":
        return _accepted(op)
    if op.status == "failed":
        return _failed(op)
    public = await _operation_public(membership, op)
    assert public.member is not None
    return JSONResponse(public.member.model_dump(mode="json"), status_code=201)


@router.get("/v1/operations/{operation}", operation_id="get_operation", tags=["operations"])
async def get_operation(
    operation: uuid.UUID, principal: MaybePrincipal, membership: MembershipService
) -> OperationPublic:
    """The outcome of a request answered with 202 (only its requester may read it).

    A registration's operation has no signed-in requester: its unguessable id is the key.
    """
    op = await membership.operation(operation)
    owner = principal.account_id if principal is not None else ANONYMOUS
    if op is None or (op.requested_by != ANONYMOUS and op.requested_by != owner):
        raise Problem(404, "operation-not-found", "Unknown operation", "No such operation.")
    return await _operation_public(membership, op)


# -- departments and the member lifecycle -----------------------------------------------


class DepartmentPublic(BaseModel):
    """A department's settings."""

    department_id: uuid.UUID
    name: str
    invitation_ttl_s: int = Field(description="How long invitations stay valid, in seconds.")


class DepartmentUpdate(BaseModel):
    """Department settings to change."""

    invitation_ttl_s: int | None = Field(default=None, ge=1, le=365 * 24 * 3600)


class MemberUpdate(BaseModel):
    """What to change about a member; absent fields stay as they are."""

    role: Role | None = None
    status: Literal["active", "inactive"] | None = None
    employee_id: str | None = Field(default=None, max_length=100)


async def _department(membership: Membership, dept: uuid.UUID) -> DepartmentPublic:
    async with membership.engine.connect() as conn:
        row = await store.department(conn, dept)
    assert row is not None
    return DepartmentPublic(
        department_id=row.id,
        name=row.name,
        invitation_ttl_s=row.invitation_ttl_s or membership.settings.invitation_ttl_s,
    )


@router.get("/v1/departments/{dept}", operation_id="get_department", tags=["departments"])
async def get_department(
    dept: uuid.UUID, _: DepartmentAdmin, membership: MembershipService
) -> DepartmentPublic:
    """The department's settings."""
    return await _department(membership, dept)


@router.patch("/v1/departments/{dept}", operation_id="update_department", tags=["departments"])
async def update_department(
    dept: uuid.UUID, body: DepartmentUpdate, _: DepartmentAdmin, membership: MembershipService
) -> DepartmentPublic:
    """Change the department's settings (e.g. how long invitations last)."""
    if body.invitation_ttl_s is not None:
        async with membership.engine.begin() as conn:
            await conn.execute(
                store.departments.update()
                .where(store.departments.c.id == dept)
                .values(invitation_ttl_s=body.invitation_ttl_s)
            )
    return await _department(membership, dept)


async def member_view(membership: Membership, dept: uuid.UUID, account: uuid.UUID) -> MemberPublic:
    """A current member as the API shows them."""
    async with membership.engine.connect() as conn:
        row = await store.membership(conn, dept, account)
        if row is None:
            raise member_not_found()
        groups = await store_groups.groups_of(conn, dept, account)
    return _member(row, groups)


@router.patch(
    "/v1/departments/{dept}/members/{account}", operation_id="update_member", tags=["members"]
)
async def update_member(
    dept: uuid.UUID,
    account: uuid.UUID,
    body: MemberUpdate,
    admin: DepartmentAdmin,
    membership: MembershipService,
    lifecycle: LifecycleService,
) -> MemberPublic:
    """Change a member's role, status (a reporting flag) or employee ID."""
    changes: dict[str, Any] = {"role": body.role, "status": body.status}
    if "employee_id" in body.model_fields_set:
        changes["employee_id"] = body.employee_id
    await lifecycle.change(dept, account, admin.account_id, **changes)
    return await member_view(membership, dept, account)


@router.delete(
    "/v1/departments/{dept}/members/{account}",
    status_code=204,
    operation_id="remove_member",
    tags=["members"],
)
async def remove_member(
    dept: uuid.UUID, account: uuid.UUID, admin: DepartmentAdmin, lifecycle: LifecycleService
) -> Response:
    """Remove a person from the department; their account and records stay."""
    await lifecycle.remove(dept, account, admin.account_id)
    return Response(status_code=204)


@router.post(
    "/v1/departments/{dept}/members/{account}/password-reset",
    status_code=202,
    operation_id="reset_member_password",
    tags=["members"],
)
async def reset_member_password(
    dept: uuid.UUID, account: uuid.UUID, _: DepartmentAdmin, lifecycle: LifecycleService
) -> Response:
    """Email the person a single-use reset link (valid one hour)."""
    await lifecycle.reset_password(dept, account)
    return Response(status_code=202)
