"""FastAPI dependencies for notifications' routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.problems import Problem

from . import service


def get_engine(request: Request) -> AsyncEngine:
    """The service's database engine (owned by the runtime)."""
    engine: AsyncEngine = request.app.state.runtime.engine
    return engine


Engine = Annotated[AsyncEngine, Depends(get_engine)]


async def require_department_admin(
    dept: uuid.UUID, principal: CurrentPrincipal, engine: Engine
) -> Principal:
    """The caller, if they administer ``dept`` (per notifications' own memberships)."""
    if not await service.is_admin(engine, dept, principal.account_id):
        raise Problem(
            403, "forbidden", "Forbidden", "Only an admin of this department may do this."
        )
    return principal


DepartmentAdmin = Annotated[Principal, Depends(require_department_admin)]
