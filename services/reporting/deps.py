"""FastAPI dependencies for reporting's routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.problems import Problem

from . import service
from .domain import can_view_reports


def get_engine(request: Request) -> AsyncEngine:
    """The service's database engine (owned by the runtime)."""
    engine: AsyncEngine = request.app.state.runtime.engine
    return engine


Engine = Annotated[AsyncEngine, Depends(get_engine)]


async def require_report_viewer(
    dept: uuid.UUID, principal: CurrentPrincipal, engine: Engine
) -> Principal:
    """The caller, if they are an admin or officer of ``dept`` (per reporting's own data)."""
    if not can_view_reports(await service.role_of(engine, dept, principal.account_id)):
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            "Only admins and officers of this department may see its reports.",
        )
    return principal


ReportViewer = Annotated[Principal, Depends(require_report_viewer)]
