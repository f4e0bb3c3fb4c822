"""HTTP surface of invitations and the self-registration link."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field

from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.auth import MaybePrincipal
from prodigy_users.runtime.errors import InvalidInput, WeakPassword
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.text import Email, Pasted, Secret, Text, refuse_pasted_controls

from ..deps import (
    AcceptGuard,
    DepartmentAdmin,
    EntryService,
    InvitationsService,
    InvitationViewGuard,
    JoinGuard,
    RegistrationLinksService,
)
from ..errors import (
    AccountNotReady,
    EmailDomainNotAllowed,
    InvitationExpired,
    InvitationInvalid,
    InvitationNotFound,
    InvitationNotPending,
    InvitationRevoked,
    InvitationUsed,
    RegistrationLapsed,
    RegistrationLinkExpired,
    RegistrationLinkInvalid,
    ReminderTooSoon,
)
from ..members.joining import Joined
from ..schemas import Named
from .entry import Registered, Registration

router = APIRouter()

THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many attempts (`/too-many-attempts`, with `Retry-After`)."}
}


class InvitationsCreate(BaseModel):
    """Addresses to invite: a list, or one pasted string (commas, semicolons, spaces, lines)."""

    emails: Annotated[list[Pasted] | Pasted, BeforeValidator(refuse_pasted_controls)] = Field(
        examples=[["ana@example.org", "Bo Lee <bo@example.org>"], "ana@example.org; bo@example.org"]
    )
    role: Role | None = Field(
        default=None,
        description="Role on joining; absent: `member`, or a returning person's old role.",
    )


class InviteOutcome(BaseModel):
    """What happened to one address."""

    email: str
    outcome: Literal["invited", "already_member", "already_invited", "invalid"]
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


class InviteResults(BaseModel):
    """One outcome per distinct address, in the order pasted."""

    results: list[InviteOutcome]


class InvitationPublic(BaseModel):
    """An invitation as admins see it."""

    invitation_id: uuid.UUID
    email: str
    name: str | None = Field(
        default=None,
        description="The name pasted with the address (`Sam Two <sam@x.org>`), if any.",
        examples=["Sam Two"],
    )
    role: str | None
    status: Literal["pending", "accepted", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime
    last_sent_at: datetime
    accepted_at: datetime | None
    account_id: uuid.UUID | None


class InvitationsPage(BaseModel):
    """The department's invitations, newest first."""

    items: list[InvitationPublic]


class RegistrationBody(Named):
    """Register while accepting: who you are and the password you choose."""

    email: Email
    password: Secret = Field(min_length=1, max_length=1024)


class JoinedPublic(BaseModel):
    """The outcome of accepting or joining."""

    department_id: uuid.UUID
    account_id: uuid.UUID
    role: str
    status: Literal["joined", "restored"]


class LinkPublic(BaseModel):
    """The department's self-registration link."""

    url: str | None
    enabled: bool
    role: str | None
    expires_at: datetime | None
    allowed_domains: list[str]


class LinkCreate(BaseModel):
    """Options for a new self-registration link."""

    role: Role = "member"
    expires_at: datetime | None = None
    allowed_domains: list[Annotated[Text, Field(max_length=253)]] = Field(
        default=[], max_length=50
    )


class RegistrationAccepted(BaseModel):
    """A registration recorded (202). The answer is the same whether or not the address
    has an account.

    `check_your_email`: the address must be confirmed; a link went to it (or, if it has
    an account, an email telling its owner to sign in). `pending`: the person registered
    with the invited address itself; follow `operation_url` until they have joined.
    """

    status: Literal["check_your_email", "pending"]
    email: str
    operation_id: uuid.UUID | None = None
    operation_url: str | None = None


_ENTRY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Signed in: the account joined.", "model": JoinedPublic},
    202: {
        "description": "Registering: recorded; `check_your_email`, or `pending` with the "
        "operation to follow (the invited address itself).",
        "model": RegistrationAccepted,
    },
}


def _entered(outcome: Joined | Registered) -> Any:
    if isinstance(outcome, Joined):
        body = JoinedPublic(
            department_id=outcome.department_id,
            account_id=outcome.account_id,
            role=outcome.role,
            status=outcome.status,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    if outcome.confirm_email:
        answer = RegistrationAccepted(status="check_your_email", email=outcome.email)
        return JSONResponse(answer.model_dump(mode="json", exclude_none=True), status_code=202)
    url = f"/v1/operations/{outcome.operation_id}"
    answer = RegistrationAccepted(
        status="pending", email=outcome.email, operation_id=outcome.operation_id, operation_url=url
    )
    return JSONResponse(
        answer.model_dump(mode="json"), status_code=202, headers={"Location": url}
    )


def _registration(body: RegistrationBody | None) -> Registration | None:
    if body is None:
        return None
    return Registration(name=body.name, email=str(body.email), password=body.password)


@router.post("/v1/departments/{dept}/invitations", operation_id="invite", tags=["invitations"])
@raises(InvalidInput)
async def invite(
    dept: uuid.UUID,
    body: InvitationsCreate,
    admin: DepartmentAdmin,
    invitations: InvitationsService,
) -> InviteResults:
    """Invite many addresses at once; each gets its own email and outcome."""
    results = await invitations.invite(dept, body.emails, body.role, admin)
    return InviteResults(
        results=[
            InviteOutcome(
                email=r.email,
                outcome=r.outcome,
                invitation_id=r.invitation_id,
                reason=r.reason,
            )
            for r in results
        ]
    )


@router.get(
    "/v1/departments/{dept}/invitations", operation_id="list_invitations", tags=["invitations"]
)
async def list_invitations(
    dept: uuid.UUID,
    _: DepartmentAdmin,
    invitations: InvitationsService,
    status: Literal["pending", "accepted", "revoked", "expired"] | None = None,
) -> InvitationsPage:
    """The department's invitations, optionally of one status."""
    rows = await invitations.listing(dept, status)
    return InvitationsPage(
        items=[
            InvitationPublic(
                invitation_id=r.id,
                email=r.email,
                name=r.name,
                role=r.role,
                status=r.effective_status,
                created_at=r.created_at,
                expires_at=r.expires_at,
                last_sent_at=r.last_sent_at,
                accepted_at=r.accepted_at,
                account_id=r.account_id,
            )
            for r in rows
        ]
    )


@router.post(
    "/v1/departments/{dept}/invitations/{invitation}/reminders",
    status_code=202,
    # Nothing to say but "accepted": documented, and sent, without a body.
    response_class=Response,
    operation_id="remind_invitation",
    tags=["invitations"],
)
@raises(InvitationNotFound, InvitationNotPending, ReminderTooSoon)
async def remind(
    dept: uuid.UUID, invitation: uuid.UUID, admin: DepartmentAdmin, invitations: InvitationsService
) -> Response:
    """Send the invitation again (at most once an hour)."""
    await invitations.remind(dept, invitation, admin)
    return Response(status_code=202)


@router.delete(
    "/v1/departments/{dept}/invitations/{invitation}",
    status_code=204,
    operation_id="revoke_invitation",
    tags=["invitations"],
)
@raises(InvitationNotFound, InvitationNotPending)
async def revoke(
    dept: uuid.UUID, invitation: uuid.UUID, admin: DepartmentAdmin, invitations: InvitationsService
) -> Response:
    """Withdraw an invitation: its link stops working."""
    await invitations.revoke(dept, invitation, admin)
    return Response(status_code=204)


class InvitedPublic(BaseModel):
    """Whom an invitation is for, as its link's page greets them."""

    email: str = Field(description="The invited address.", examples=["sam@example.org"])
    name: str | None = Field(
        default=None,
        description="The name the admin pasted with the address, if any.",
        examples=["Sam Two"],
    )


@router.get(
    "/v1/invitations/{token}",
    operation_id="get_invitation",
    tags=["invitations"],
    dependencies=[InvitationViewGuard],
    responses={**THROTTLED},
)
@raises(InvitationInvalid, InvitationUsed, InvitationRevoked, InvitationExpired)
async def get_invitation(token: str, entry: EntryService) -> InvitedPublic:
    """The address an invitation was sent to and the name pasted with it, for the page
    its link opens (the registration form's first values); refused as accepting it
    would be. Whoever holds the link may see them: it was emailed to that address."""
    email, name = await entry.invited(token)
    return InvitedPublic(email=email, name=name)


@router.post(
    "/v1/invitations/{token}/accept",
    operation_id="accept_invitation",
    tags=["invitations"],
    dependencies=[AcceptGuard],
    responses={**_ENTRY_RESPONSES, **THROTTLED},
)
@raises(
    InvitationInvalid,
    InvitationUsed,
    InvitationRevoked,
    InvitationExpired,
    AccountNotReady,
    RegistrationLapsed,
    InvalidInput,
    WeakPassword,
)
async def accept(
    token: str,
    principal: MaybePrincipal,
    entry: EntryService,
    body: RegistrationBody | None = None,
) -> Any:
    """Accept: signed in, your account joins; otherwise register with name, email, password
    (another address than the invited one must be confirmed from the email it gets)."""
    outcome = await entry.accept(
        token, principal, _registration(body if principal is None else None)
    )
    return _entered(outcome)


def _link(row: Any, url: str | None) -> LinkPublic:
    if row is None:
        return LinkPublic(url=None, enabled=False, role=None, expires_at=None, allowed_domains=[])
    return LinkPublic(
        url=url if row.enabled else None,
        enabled=row.enabled,
        role=row.role,
        expires_at=row.expires_at,
        allowed_domains=list(row.allowed_domains),
    )


@router.get(
    "/v1/departments/{dept}/registration-link",
    operation_id="get_registration_link",
    tags=["registration link"],
)
async def get_link(
    dept: uuid.UUID, _: DepartmentAdmin, links: RegistrationLinksService
) -> LinkPublic:
    """The department's self-registration link (to copy and share)."""
    row = await links.link(dept)
    return _link(row, links.url(row.link_id) if row is not None else None)


@router.post(
    "/v1/departments/{dept}/registration-link",
    status_code=201,
    operation_id="rotate_registration_link",
    tags=["registration link"],
)
@raises(InvalidInput)
async def rotate_link(
    dept: uuid.UUID, body: LinkCreate, _: DepartmentAdmin, links: RegistrationLinksService
) -> LinkPublic:
    """A new link; the old one stops working at once."""
    row = await links.rotate(dept, body.role, body.expires_at, body.allowed_domains)
    return _link(row, links.url(row.link_id))


@router.delete(
    "/v1/departments/{dept}/registration-link",
    status_code=204,
    operation_id="disable_registration_link",
    tags=["registration link"],
)
async def disable_link(
    dept: uuid.UUID, _: DepartmentAdmin, links: RegistrationLinksService
) -> Response:
    """Switch self-registration off."""
    await links.disable(dept)
    return Response(status_code=204)


@router.post(
    "/v1/join/{token}",
    operation_id="join",
    tags=["registration link"],
    dependencies=[JoinGuard],
    responses={**_ENTRY_RESPONSES, **THROTTLED},
)
@raises(
    RegistrationLinkInvalid,
    RegistrationLinkExpired,
    EmailDomainNotAllowed,
    AccountNotReady,
    RegistrationLapsed,
    InvalidInput,
    WeakPassword,
)
async def join(
    token: str,
    principal: MaybePrincipal,
    entry: EntryService,
    body: RegistrationBody | None = None,
) -> Any:
    """Join through the department's link: signed in, or registering (the address is
    confirmed from the email it gets before the person joins)."""
    outcome = await entry.join_link(
        token, principal, _registration(body if principal is None else None)
    )
    return _entered(outcome)
