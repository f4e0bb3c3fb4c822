"""FastAPI dependencies for reporting's routes: its use cases, and who may read reports."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.service import use_case

from .container import Reporting
from .errors import NotAReportViewer
from .record.service import Records
from .rules import can_view_reports
from .users.service import UsersTable

UsersTableService = Annotated[UsersTable, Depends(use_case(Reporting, lambda c: c.users))]
RecordsService = Annotated[Records, Depends(use_case(Reporting, lambda c: c.records))]


@raises(NotAReportViewer)
async def require_report_viewer(
    dept: uuid.UUID, principal: CurrentPrincipal, users: UsersTableService
) -> Principal:
    """The caller, if they are an admin or officer of ``dept`` (per reporting's own data)."""
    if not can_view_reports(await users.role_of(dept, principal.account_id)):
        raise NotAReportViewer()
    return principal


ReportViewer = Annotated[Principal, Depends(require_report_viewer)]
