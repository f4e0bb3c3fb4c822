"""Reporting's handlers table: payload type -> handler (thin: parse, call the use case)."""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded
from prodigy_users.runtime.consumer import Handler

from . import service

HANDLERS: dict[type[Payload], Handler] = {
    DepartmentCreated: service.record_department,
    MemberAdded: service.record_member,
}
