"""HTTP surface of departments: create one with its first admin, read and change settings."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from prodigy_users.runtime.errors import InvalidInput
from prodigy_users.runtime.idempotency import current_key
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.text import Email

from ..deps import DepartmentAdmin, DepartmentsService, Operator
from ..errors import AccountExists, DepartmentNotFound, RegistrationLapsed
from ..members.api import accepted, failed
from ..schemas import Named
from .service import DepartmentSettings

router = APIRouter()


class AdminCreate(Named):
    """A department's first admin."""

    email: Email


class DepartmentCreate(Named):
    """A new department and its first admin."""

    admin: AdminCreate


class DepartmentPublic(BaseModel):
    """A department's settings."""

    department_id: uuid.UUID
    name: str
    invitation_ttl_s: int = Field(description="How long invitations stay valid, in seconds.")


class DepartmentUpdate(BaseModel):
    """Department settings to change."""

    invitation_ttl_s: int | None = Field(default=None, ge=1, le=365 * 24 * 3600)


def _public(settings: DepartmentSettings) -> DepartmentPublic:
    return DepartmentPublic(
        department_id=settings.department_id,
        name=settings.name,
        invitation_ttl_s=settings.invitation_ttl_s,
    )


@router.post(
    "/v1/departments",
    status_code=201,
    operation_id="create_department",
    tags=["departments"],
    responses={202: {"description": "Accepted; the admin's account is still being made."}},
)
@raises(AccountExists, RegistrationLapsed)
async def create_department(
    body: DepartmentCreate, principal: Operator, departments: DepartmentsService
) -> Any:
    """Platform operators: a department and its first admin (an existing account joins as admin)."""
    department_id, op = await departments.create(
        name=body.name,
        admin_name=body.admin.name,
        admin_email=str(body.admin.email),
        requested_by=principal.account_id,
        idempotency_key=current_key(),
    )
    if op.status == "pending":
        return accepted(op, {"department_id": str(department_id)})
    if op.status == "failed":
        return failed(op)
    assert op.result is not None
    return {
        "department_id": str(department_id),
        "name": body.name,
        "admin_account_id": op.result["account_id"],
    }


@router.get("/v1/departments/{dept}", operation_id="get_department", tags=["departments"])
@raises(DepartmentNotFound)
async def get_department(
    dept: uuid.UUID, _: DepartmentAdmin, departments: DepartmentsService
) -> DepartmentPublic:
    """The department's settings."""
    return _public(await departments.settings(dept))


@router.patch("/v1/departments/{dept}", operation_id="update_department", tags=["departments"])
@raises(DepartmentNotFound, InvalidInput)
async def update_department(
    dept: uuid.UUID, body: DepartmentUpdate, _: DepartmentAdmin, departments: DepartmentsService
) -> DepartmentPublic:
    """Change the department's settings (e.g. how long invitations last)."""
    return _public(await departments.update(dept, invitation_ttl_s=body.invitation_ttl_s))
