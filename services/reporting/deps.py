"""FastAPI dependencies for reporting's routes: its use cases, and who may read reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.service import use_cases

from .container import Reporting
from .errors import NotAReportViewer
from .record.service import Records
from .rules import can_view_reports
from .users.service import UsersTable

ReportingService = Annotated[Reporting, Depends(use_cases(Reporting))]


async def get_users_table(reporting: ReportingService) -> UsersTable:
    """The users table's use cases."""
    return reporting.users


async def get_records(reporting: ReportingService) -> Records:
    """The individual record's use cases."""
    return reporting.records


UsersTableService = Annotated[UsersTable, Depends(get_users_table)]
RecordsService = Annotated[Records, Depends(get_records)]


@raises(NotAReportViewer)
async def require_report_viewer(
    dept: uuid.UUID, principal: CurrentPrincipal, users: UsersTableService
) -> Principal:
    """The caller, if they are an admin or officer of ``dept`` (per reporting's own data)."""
    if not can_view_reports(await users.role_of(dept, principal.account_id)):
        raise NotAReportViewer()
    return principal


ReportViewer = Annotated[Principal, Depends(require_report_viewer)]
