"""Identity's HTTP surface: sign-in, passwords, the caller's account (its name and
login email, ``profile``; signing out everywhere), operators' links and merges.

The pages people use (the set-password page every emailed link opens) are the
console's; identity serves only its API. The public calls that take a secret or
make an email are guarded by the throttle (``deps``).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from prodigy_users.runtime.auth import CurrentPrincipal
from prodigy_users.runtime.errors import WeakPassword
from prodigy_users.runtime.openapi import raises

from .deps import (
    AccountsService,
    AddressConfirmGuard,
    AddressesService,
    AddressRequestGuard,
    ConfirmationGuard,
    ConfirmationResendGuard,
    EmailChangeConfirmGuard,
    EmailChangeGuard,
    MergesService,
    Operator,
    PasswordSetGuard,
    ProfilesService,
    PublicKeys,
    ResetRequestGuard,
    SignInGuard,
)
from .errors import (
    AccountAlreadyMerged,
    AccountNotFound,
    AccountUnconfirmed,
    AddressAlreadyYours,
    AddressNotFound,
    EmailNotConfirmed,
    EmailTaken,
    InvalidCredentials,
    KeptAccountMerged,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    LoginEmailNotRemovable,
    MergeIntoItself,
    SameEmail,
    WrongCurrentPassword,
    WrongRegistrationPassword,
)
from .schemas import (
    AccessToken,
    AccountChange,
    AccountPublic,
    AddressConfirmation,
    AddressList,
    AddressOut,
    AddressRequest,
    ConfirmationResend,
    EmailChangeConfirmation,
    EmailChangeRequest,
    EmailConfirmation,
    EmailConfirmed,
    MergeOut,
    MergeRequest,
    PasswordLink,
    PasswordSet,
    ResetRequest,
    TokenRequest,
)

router = APIRouter()

THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many attempts (`/too-many-attempts`, with `Retry-After`)."}
}


@router.post("/v1/auth/token", operation_id="issue_token", tags=["auth"], responses=THROTTLED)
@raises(InvalidCredentials, EmailNotConfirmed)
async def issue_token(body: TokenRequest, _: SignInGuard, accounts: AccountsService) -> AccessToken:
    """Sign in: an access token, or 401 whether or not the email exists."""
    token, ttl = await accounts.login(body.email, body.password)
    return AccessToken(access_token=token, expires_in=ttl)


@router.get("/v1/auth/jwks", operation_id="jwks", tags=["auth"])
async def jwks(keys: PublicKeys) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    return keys


@router.post(
    "/v1/password/set",
    status_code=204,
    operation_id="set_password",
    tags=["password"],
    responses=THROTTLED,
)
@raises(LinkInvalid, LinkUsed, LinkExpired, WeakPassword)
async def set_password(
    body: PasswordSet, _: PasswordSetGuard, accounts: AccountsService
) -> Response:
    """Set a password with a single-use set-password or reset token."""
    await accounts.set_password(body.token, body.password)
    return Response(status_code=204)


@router.post(
    "/v1/password/reset-requests",
    status_code=202,
    # Nothing to say but "accepted": documented, and sent, without a body.
    response_class=Response,
    operation_id="request_password_reset",
    tags=["password"],
    responses=THROTTLED,
)
async def request_reset(
    body: ResetRequest, _: ResetRequestGuard, accounts: AccountsService
) -> Response:
    """Ask for a reset email. Always 202: the answer never tells whether the account exists."""
    await accounts.request_reset(body.email)
    return Response(status_code=202)


@router.post(
    "/v1/email-confirmations",
    operation_id="confirm_email",
    tags=["registration"],
    responses={
        400: {"description": "`token-invalid`, `token-used` or `token-expired`."},
        401: {"description": "`invalid-credentials`: not the password chosen when registering."},
        **THROTTLED,
    },
)
@raises(LinkInvalid, LinkUsed, LinkExpired, WrongRegistrationPassword)
async def confirm_email(
    body: EmailConfirmation, _: ConfirmationGuard, accounts: AccountsService
) -> EmailConfirmed:
    """Confirm a registration's address with the emailed link's token and the password
    chosen when registering; the account can sign in from now on."""
    done = await accounts.confirm_email(body.token, body.password)
    return EmailConfirmed(
        account_id=done.account_id,
        email=done.email,
        department_id=done.department_id,
        request_id=done.request_id,
    )


@router.post(
    "/v1/email-confirmations/resend",
    status_code=202,
    # Nothing to say but "accepted": documented, and sent, without a body.
    response_class=Response,
    operation_id="resend_email_confirmation",
    tags=["registration"],
    responses=THROTTLED,
)
async def resend_email_confirmation(
    body: ConfirmationResend, _: ConfirmationResendGuard, accounts: AccountsService
) -> Response:
    """Send a registration's confirmation link again. Always 202: the answer never tells
    whether a registration waits for this address."""
    await accounts.resend_confirmation(str(body.email))
    return Response(status_code=202)


@router.get("/v1/me", operation_id="me", tags=["accounts"])
@raises(AccountNotFound)
async def me(principal: CurrentPrincipal, accounts: AccountsService) -> AccountPublic:
    """The caller's own account."""
    account = await accounts.me(principal.account_id)
    return AccountPublic(account_id=account.id, email=account.email, name=account.name)


@router.patch("/v1/me", operation_id="update_me", tags=["accounts"])
@raises(AccountNotFound)
async def update_me(
    body: AccountChange, principal: CurrentPrincipal, profiles: ProfilesService
) -> AccountPublic:
    """Change the caller's own name. The name belongs to the account, not to a
    department: it changes in every department the person belongs to (their users
    tables and records follow within seconds, from ``account_updated``)."""
    account = await profiles.me(principal.account_id)
    if body.name is not None:
        account = await profiles.rename_me(principal.account_id, body.name)
    return AccountPublic(account_id=account.id, email=account.email, name=account.name)


@router.post(
    "/v1/me/email-change",
    status_code=202,
    operation_id="request_email_change",
    tags=["accounts"],
    responses={
        422: {"description": "`wrong-password`, `same-email`, or `validation`."},
        **THROTTLED,
    },
)
@raises(AccountNotFound, WrongCurrentPassword, SameEmail)
async def request_email_change(
    body: EmailChangeRequest,
    principal: CurrentPrincipal,
    _: EmailChangeGuard,
    profiles: ProfilesService,
) -> Response:
    """Ask to move the caller's login email to a new address: a link goes to that
    address, and the login email changes only when it is opened. Always 202 for a
    right password, whether or not another account holds the address (the link says
    so when opened): the answer never tells who has an account."""
    await profiles.request_email_change(principal.account_id, str(body.email), body.password)
    return Response(status_code=202)


@router.post(
    "/v1/email-change-confirmations",
    operation_id="confirm_email_change",
    tags=["accounts"],
    responses={
        400: {"description": "`token-invalid`, `token-used` or `token-expired`."},
        409: {"description": "`email-taken`: another account holds the address by now."},
        **THROTTLED,
    },
)
@raises(LinkInvalid, LinkUsed, LinkExpired, EmailTaken)
async def confirm_email_change(
    body: EmailChangeConfirmation, _: EmailChangeConfirmGuard, profiles: ProfilesService
) -> AccountPublic:
    """Use the link sent to a new login email: it becomes the account's login email
    (the old address gets a notice). Needs no sign-in: the link was sent to the new
    address at the signed-in owner's request."""
    account = await profiles.confirm_email_change(body.token)
    return AccountPublic(account_id=account.id, email=account.email, name=account.name)


def _address_out(address: Any) -> AddressOut:
    return AddressOut(
        address_id=address.id,
        email=address.email,
        login=address.login,
        linked_at=address.linked_at,
    )


@router.get("/v1/me/addresses", operation_id="list_my_addresses", tags=["accounts"])
@raises(AccountNotFound)
async def list_my_addresses(
    principal: CurrentPrincipal, addresses: AddressesService
) -> AddressList:
    """The caller's addresses: the login email (``login`` true) first, then the ones
    linked to the account. Any of them finds the account when an admin invites, adds
    or uploads it; only the login email signs in."""
    found = await addresses.of(principal.account_id)
    return AddressList(items=[_address_out(a) for a in found])


@router.post(
    "/v1/me/addresses",
    status_code=202,
    response_class=Response,
    operation_id="request_address_link",
    tags=["accounts"],
    responses={422: {"description": "`address-already-yours`, or `validation`."}, **THROTTLED},
)
@raises(AccountNotFound, AddressAlreadyYours)
async def request_address_link(
    body: AddressRequest,
    principal: CurrentPrincipal,
    _: AddressRequestGuard,
    addresses: AddressesService,
) -> Response:
    """Ask to link an address to the caller's account: a link goes to that address,
    and it is linked only when the link is opened. Always 202, whether or not another
    account holds the address (the link says so when opened): the answer never tells
    who has an account."""
    await addresses.request_link(principal.account_id, str(body.email))
    return Response(status_code=202)


@router.delete(
    "/v1/me/addresses/{address_id}",
    status_code=204,
    operation_id="unlink_my_address",
    tags=["accounts"],
)
@raises(LoginEmailNotRemovable, AddressNotFound)
async def unlink_my_address(
    address_id: uuid.UUID, principal: CurrentPrincipal, addresses: AddressesService
) -> Response:
    """Unlink one of the caller's linked addresses: it no longer finds the account, and
    any account may take it. The login email cannot be removed (409)."""
    await addresses.unlink(principal.account_id, address_id)
    return Response(status_code=204)


@router.post(
    "/v1/address-confirmations",
    operation_id="confirm_address_link",
    tags=["accounts"],
    responses={
        400: {"description": "`token-invalid`, `token-used` or `token-expired`."},
        409: {"description": "`email-taken`: another account holds the address."},
        **THROTTLED,
    },
)
@raises(LinkInvalid, LinkUsed, LinkExpired, EmailTaken)
async def confirm_address_link(
    body: AddressConfirmation, _: AddressConfirmGuard, addresses: AddressesService
) -> AddressOut:
    """Use the link sent to an address: it is linked to the account that asked. Needs
    no sign-in: the link was sent to the address at the signed-in owner's request."""
    return _address_out(await addresses.confirm_link(body.token))


@router.post(
    "/v1/me/sign-out-everywhere",
    operation_id="sign_out_everywhere",
    status_code=204,
    tags=["accounts"],
)
@raises(AccountNotFound)
async def sign_out_everywhere(principal: CurrentPrincipal, accounts: AccountsService) -> Response:
    """Revoke every access token of the caller's account issued until now, this one too:
    every service refuses them (401) once it has heard (normally within a second)."""
    await accounts.sign_out_everywhere(principal.account_id)
    return Response(status_code=204)


@router.post(
    "/v1/accounts/{account}/password-link",
    status_code=201,
    operation_id="issue_password_link",
    tags=["operators"],
)
@raises(AccountNotFound)
async def password_link(account: uuid.UUID, _: Operator, accounts: AccountsService) -> PasswordLink:
    """Platform operators: a fresh set-password link (e.g. for a department's first admin)."""
    link = await accounts.operator_link(account)
    return PasswordLink(url=link.url, token=link.token, expires_at=link.expires_at)


@router.post(
    "/v1/accounts/{account}/merges",
    operation_id="merge_accounts",
    tags=["operators"],
)
@raises(
    MergeIntoItself,
    AccountNotFound,
    AccountAlreadyMerged,
    KeptAccountMerged,
    AccountUnconfirmed,
)
async def merge_accounts(
    account: uuid.UUID, body: MergeRequest, _: Operator, merges: MergesService
) -> MergeOut:
    """Platform operators: merge the account in the body into this one (one person with
    two accounts). Its login email and linked addresses become this account's linked
    addresses, it can no longer sign in (its tokens are refused), and
    ``identity.account_merged`` lets membership and reporting move its memberships and
    training records. Asking again for the same merge answers the same and changes
    nothing."""
    done = await merges.merge(account, body.account_id)
    return MergeOut(
        kept_account_id=done.kept_account_id,
        merged_account_id=done.merged_account_id,
        merged_at=done.merged_at,
    )
