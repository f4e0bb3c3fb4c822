"""FastAPI dependencies for notifications' routes: its use cases, and who reads the log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.service import use_cases

from .container import Notifications
from .errors import NotADepartmentAdmin
from .service import EmailLog

NotificationsService = Annotated[Notifications, Depends(use_cases(Notifications))]


async def get_email_log(notifications: NotificationsService) -> EmailLog:
    """The email log's use cases."""
    return notifications.email_log


EmailLogService = Annotated[EmailLog, Depends(get_email_log)]


@raises(NotADepartmentAdmin)
async def require_department_admin(
    dept: uuid.UUID, principal: CurrentPrincipal, email_log: EmailLogService
) -> Principal:
    """The caller, if they administer ``dept`` (per notifications' own memberships)."""
    if not await email_log.is_admin(dept, principal.account_id):
        raise NotADepartmentAdmin()
    return principal


DepartmentAdmin = Annotated[Principal, Depends(require_department_admin)]
