"""FastAPI dependencies for membership's routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.problems import Problem

from . import store
from .domain import can_manage_members
from .groups import Groups
from .invitations import Invitations
from .lifecycle import Lifecycle
from .service import Membership


def get_membership(request: Request) -> Membership:
    """The process's use cases."""
    membership: Membership = request.app.state.runtime.state["membership"]
    return membership


def get_invitations(request: Request) -> Invitations:
    """Invitation and link use cases."""
    invitations: Invitations = request.app.state.runtime.state["invitations"]
    return invitations


def get_lifecycle(request: Request) -> Lifecycle:
    """Member lifecycle use cases."""
    lifecycle: Lifecycle = request.app.state.runtime.state["lifecycle"]
    return lifecycle


def get_groups(request: Request) -> Groups:
    """Group use cases."""
    groups: Groups = request.app.state.runtime.state["groups"]
    return groups


MembershipService = Annotated[Membership, Depends(get_membership)]
InvitationsService = Annotated[Invitations, Depends(get_invitations)]
LifecycleService = Annotated[Lifecycle, Depends(get_lifecycle)]
GroupsService = Annotated[Groups, Depends(get_groups)]


async def require_admin(
    dept: uuid.UUID, principal: CurrentPrincipal, membership: MembershipService
) -> Principal:
    """The caller administers department ``dept`` (404 if it does not exist, 403 if not theirs)."""
    async with membership.engine.connect() as conn:
        if await store.department(conn, dept) is None:
            raise Problem(404, "department-not-found", "Unknown department", "No such department.")
        role = await store.role_of(conn, dept, principal.account_id)
    if not can_manage_members(role):
        raise Problem(403, "forbidden", "Forbidden", "You do not administer this department.")
    return principal


def require_operator(principal: CurrentPrincipal) -> Principal:
    """Platform operators only."""
    if not principal.is_operator:
        raise Problem(403, "forbidden", "Forbidden", "Only platform operators may do this.")
    return principal


DepartmentAdmin = Annotated[Principal, Depends(require_admin)]
Operator = Annotated[Principal, Depends(require_operator)]
