"""FastAPI dependencies of membership's routes: its use cases (typed), who may call, and
the guards that throttle the public calls that take a link (``runtime.throttle``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request

from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.errors import DomainError, OperatorsOnly, TooManyAttempts
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.service import use_case
from prodigy_users.runtime.throttle import throttle_of
from prodigy_users.runtime.throttle_rules import (
    PER_ADDRESS,
    PER_PERSONAL_LINK,
    PER_SHARED_LINK,
    Limit,
)

from .container import UseCases
from .departments.service import Departments
from .errors import DepartmentNotFound, NotAdministrator
from .groups.service import Groups
from .imports.service import Imports
from .invitations.entry import Entry
from .invitations.links import RegistrationLinks
from .invitations.service import Invitations
from .members.accounts import AccountNames
from .members.lifecycle import Lifecycle
from .members.requests import Operations
from .members.service import Members

DepartmentsService = Annotated[Departments, Depends(use_case(UseCases, lambda c: c.departments))]
MembersService = Annotated[Members, Depends(use_case(UseCases, lambda c: c.members))]
LifecycleService = Annotated[Lifecycle, Depends(use_case(UseCases, lambda c: c.lifecycle))]
NamesService = Annotated[AccountNames, Depends(use_case(UseCases, lambda c: c.names))]
OperationsService = Annotated[Operations, Depends(use_case(UseCases, lambda c: c.operations))]
InvitationsService = Annotated[Invitations, Depends(use_case(UseCases, lambda c: c.invitations))]
RegistrationLinksService = Annotated[
    RegistrationLinks, Depends(use_case(UseCases, lambda c: c.links))
]
EntryService = Annotated[Entry, Depends(use_case(UseCases, lambda c: c.entry))]
GroupsService = Annotated[Groups, Depends(use_case(UseCases, lambda c: c.groups))]
ImportsService = Annotated[Imports, Depends(use_case(UseCases, lambda c: c.imports))]


@raises(DepartmentNotFound, NotAdministrator)
async def require_admin(
    dept: uuid.UUID, principal: CurrentPrincipal, members: MembersService
) -> Principal:
    """The caller administers department ``dept`` (``DepartmentNotFound`` if it does not
    exist, ``NotAdministrator`` if it is not theirs)."""
    await members.check_admin(dept, principal.account_id)
    return principal


@raises(OperatorsOnly)
async def require_operator(principal: CurrentPrincipal) -> Principal:
    """Platform operators only."""
    if not principal.is_operator:
        raise OperatorsOnly()
    return principal


@raises(DepartmentNotFound, NotAdministrator)
async def require_import_admin(
    dept: uuid.UUID,
    principal: CurrentPrincipal,
    members: MembersService,
    departments: DepartmentsService,
) -> Principal:
    """The department's admins; and platform operators, who load people for departments
    (``prodigy-users import``) and already hold the key that signs every token."""
    if not principal.is_operator:
        return await require_admin(dept, principal, members)
    if not await departments.exists(dept):
        raise DepartmentNotFound()
    return principal


DepartmentAdmin = Annotated[Principal, Depends(require_admin)]
Operator = Annotated[Principal, Depends(require_operator)]
ImportAdmin = Annotated[Principal, Depends(require_import_admin)]


# Refused uses of a link per client address (a wrong, used or expired token, an address
# that has an account...), and every use of one link: an invitation is one person's,
# the registration link a whole department's.
ACCEPT_BY_ADDRESS = Limit("accept/address", PER_ADDRESS)
ACCEPT_BY_TOKEN = Limit("accept/token", PER_PERSONAL_LINK, charges="attempts")
JOIN_BY_ADDRESS = Limit("join/address", PER_ADDRESS)
JOIN_BY_TOKEN = Limit("join/token", PER_SHARED_LINK, charges="attempts")
# Reading whom an invitation is for (its page's form): refused reads per client address
# only, apart from accepting's, so that opening the page never uses up the invitation.
VIEW_BY_ADDRESS = Limit("invitation-view/address", PER_ADDRESS)


@raises(TooManyAttempts)
async def accept_guard(request: Request, token: str) -> AsyncIterator[None]:
    """Accepting an invitation, throttled per client address and per invitation."""
    throttle = throttle_of(request)
    keys = [(ACCEPT_BY_ADDRESS, throttle.client(request)), (ACCEPT_BY_TOKEN, token)]
    async with throttle.attempt(keys, failures=(DomainError,)):
        yield


@raises(TooManyAttempts)
async def invitation_view_guard(request: Request) -> AsyncIterator[None]:
    """Reading an invitation by its token, throttled per client address (refused reads)."""
    throttle = throttle_of(request)
    async with throttle.attempt(
        [(VIEW_BY_ADDRESS, throttle.client(request))], failures=(DomainError,)
    ):
        yield


@raises(TooManyAttempts)
async def join_guard(request: Request, token: str) -> AsyncIterator[None]:
    """Joining through a registration link, throttled per client address and per link."""
    throttle = throttle_of(request)
    keys = [(JOIN_BY_ADDRESS, throttle.client(request)), (JOIN_BY_TOKEN, token)]
    async with throttle.attempt(keys, failures=(DomainError,)):
        yield


# For a route's ``dependencies=[...]``: the route's own signature stays as it is.
# scope="function": the attempt is settled before the answer leaves, so the client's
# next attempt finds its count as this one left it.
AcceptGuard: Any = Depends(accept_guard, scope="function")
InvitationViewGuard: Any = Depends(invitation_view_guard, scope="function")
JoinGuard: Any = Depends(join_guard, scope="function")
