"""FastAPI dependencies for identity's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.problems import Problem

from .service import Identity


def get_identity(request: Request) -> Identity:
    """The process's use cases."""
    identity: Identity = request.app.state.runtime.state["identity"]
    return identity


def require_operator(principal: CurrentPrincipal) -> Principal:
    """Platform operators only."""
    if not principal.is_operator:
        raise Problem(403, "forbidden", "Forbidden", "Only platform operators may do this.")
    return principal


IdentityService = Annotated[Identity, Depends(get_identity)]
Operator = Annotated[Principal, Depends(require_operator)]
