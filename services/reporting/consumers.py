"""Reporting's handlers table: payload type -> handler (thin: parse, call the use case)."""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberAdded,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.runtime.consumer import Handler

from . import service

HANDLERS: dict[type[Payload], Handler] = {
    DepartmentCreated: service.record_department,
    MemberAdded: service.record_member,
    MemberRoleChanged: service.record_role,
    MemberStatusChanged: service.record_status,
    EmployeeIdSet: service.record_employee_id,
    MemberRemoved: service.record_removal,
    MemberRestored: service.record_restore,
    GroupCreated: service.record_group,
    GroupRenamed: service.record_group,
    GroupDeleted: service.record_group_deleted,
    MemberJoinedGroup: service.record_joined_group,
    MemberLeftGroup: service.record_left_group,
}
