"""Events about departments and the people in them. Partitioned by department."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import EmailStr, Field

from .envelope import Payload

Role = Literal["admin", "officer", "member"]
Status = Literal["active", "inactive"]

_DEPARTMENT = Field(
    description="The department (also the partition key).",
    examples=["9b2f4c1a-8c53-4c71-9e4b-2d0b1f7d5e6a"],
)
_ACCOUNT = Field(
    description="The person's global account id.",
    examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
)


class DepartmentCreated(Payload):
    """Event: a department exists (created by a platform operator)."""

    TYPE: ClassVar[str] = "membership.department_created"

    department_id: uuid.UUID = _DEPARTMENT
    name: str = Field(description="Display name.", examples=["Springfield EMS"])


class MemberAdded(Payload):
    """Event: a person became a member of a department."""

    TYPE: ClassVar[str] = "membership.member_added"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    name: str = Field(description="Full name.", examples=["Ana Lima"])
    email: EmailStr = Field(description="The person's login email.")
    role: Role = Field(description="`admin`, `officer` or `member`.", examples=["member"])
    status: Status = Field(
        default="active",
        description="Reporting flag only: inactive people keep full access.",
        examples=["active"],
    )
    employee_id: str | None = Field(default=None, description="Department-local employee ID.")
    joined_at: datetime = Field(description="When the membership began (UTC).")
    added_by: uuid.UUID | None = Field(
        default=None, description="Account of the admin who added them, if any."
    )
    via: Literal["admin_add", "operator", "invitation", "registration_link", "import"] = Field(
        default="admin_add", description="How the person joined.", examples=["admin_add"]
    )
