"""FastAPI dependencies for identity's routes: its use cases, its public keys, operators,
and the guards that throttle the public calls (``runtime.throttle``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from prodigy_users.contracts.email import email_key
from prodigy_users.runtime.auth import CurrentPrincipal, Principal
from prodigy_users.runtime.errors import OperatorsOnly, TooManyAttempts
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.service import use_cases
from prodigy_users.runtime.throttle import throttle_of
from prodigy_users.runtime.throttle_rules import (
    PER_ACCOUNT,
    PER_ADDRESS,
    PER_PERSONAL_LINK,
    RESET_REQUESTS_PER_ADDRESS,
    Limit,
)

from .addresses import Addresses
from .container import Identity, Jwks
from .errors import (
    InvalidCredentials,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    WrongCurrentPassword,
    WrongRegistrationPassword,
)
from .merges import Merges
from .profile import Profiles
from .schemas import (
    AddressConfirmation,
    AddressRequest,
    EmailChangeConfirmation,
    EmailChangeRequest,
    EmailConfirmation,
    PasswordSet,
    TokenRequest,
)
from .service import Accounts

IdentityService = Annotated[Identity, Depends(use_cases(Identity))]

# Failed sign-ins per account (its email key: known or not, the same count) and per
# client address; a successful sign-in forgets the account's failures.
SIGN_IN_BY_ACCOUNT = Limit("sign-in/account", PER_ACCOUNT, forget_on_success=True)
SIGN_IN_BY_ADDRESS = Limit("sign-in/address", PER_ADDRESS)
# Refused set-password tokens per client address; every use of one token.
PASSWORD_SET_BY_ADDRESS = Limit("password-set/address", PER_ADDRESS)
PASSWORD_SET_BY_TOKEN = Limit("password-set/token", PER_PERSONAL_LINK, charges="attempts")
# Every reset request per client address (each emails a person who did not ask, maybe).
RESET_REQUEST_BY_ADDRESS = Limit(
    "reset-request/address", RESET_REQUESTS_PER_ADDRESS, charges="attempts"
)
# Refused confirmations (a bad link, or not the password chosen when registering) per
# client address; every use of one confirmation link (it asks for a password).
CONFIRM_BY_ADDRESS = Limit("confirm-email/address", PER_ADDRESS)
CONFIRM_BY_TOKEN = Limit("confirm-email/token", PER_PERSONAL_LINK, charges="attempts")
# Every request to send a confirmation link again, per client address (it emails).
CONFIRM_RESEND_BY_ADDRESS = Limit(
    "confirm-resend/address", RESET_REQUESTS_PER_ADDRESS, charges="attempts"
)
# Every email-change request per account (each emails an address the person typed),
# and wrong current passwords count against the same budget; refused email-change
# links per client address, and every use of one link.
EMAIL_CHANGE_BY_ACCOUNT = Limit("email-change/account", PER_ACCOUNT, charges="attempts")
EMAIL_CHANGE_CONFIRM_BY_ADDRESS = Limit("email-change-confirm/address", PER_ADDRESS)
EMAIL_CHANGE_CONFIRM_BY_TOKEN = Limit(
    "email-change-confirm/token", PER_PERSONAL_LINK, charges="attempts"
)


async def get_accounts(identity: IdentityService) -> Accounts:
    """Identity's use cases."""
    return identity.accounts


async def get_jwks(identity: IdentityService) -> Jwks:
    """The public keys that verify access tokens."""
    return identity.jwks


async def get_profiles(identity: IdentityService) -> Profiles:
    """The person's own name and login email."""
    return identity.profiles


async def get_addresses(identity: IdentityService) -> Addresses:
    """The person's own addresses."""
    return identity.addresses


async def get_merges(identity: IdentityService) -> Merges:
    """Operators' merges of two accounts."""
    return identity.merges


@raises(TooManyAttempts)
async def email_change_guard(
    request: Request, principal: CurrentPrincipal, body: EmailChangeRequest
) -> AsyncIterator[None]:
    """Asking for a new login email, throttled per account (it sends an email). The body
    is read here so that a request refused by validation is never charged."""
    throttle = throttle_of(request)
    keys = [(EMAIL_CHANGE_BY_ACCOUNT, str(principal.account_id))]
    async with throttle.attempt(keys, failures=(WrongCurrentPassword,)):
        yield


@raises(TooManyAttempts)
async def address_request_guard(
    request: Request, principal: CurrentPrincipal, body: AddressRequest
) -> AsyncIterator[None]:
    """Asking to link an address, throttled per account on the email-change budget (each
    sends an email to an address typed). The body is read here so that a request
    refused by validation is never charged."""
    throttle = throttle_of(request)
    keys = [(EMAIL_CHANGE_BY_ACCOUNT, str(principal.account_id))]
    async with throttle.attempt(keys, failures=()):
        yield


@asynccontextmanager
async def _link_attempt(
    request: Request, by_address: Limit, by_token: Limit, token: str
) -> AsyncIterator[None]:
    """Using a single-use link, throttled per client address and per token: a link that
    is refused (invalid, used or expired) counts as a failure."""
    throttle = throttle_of(request)
    keys = [(by_address, throttle.client(request)), (by_token, token)]
    async with throttle.attempt(keys, failures=(LinkInvalid, LinkUsed, LinkExpired)):
        yield


@raises(TooManyAttempts)
async def email_change_confirm_guard(
    request: Request, body: EmailChangeConfirmation
) -> AsyncIterator[None]:
    """Using an email-change link, throttled per client address and per token."""
    async with _link_attempt(
        request, EMAIL_CHANGE_CONFIRM_BY_ADDRESS, EMAIL_CHANGE_CONFIRM_BY_TOKEN, body.token
    ):
        yield


@raises(TooManyAttempts)
async def address_confirm_guard(request: Request, body: AddressConfirmation) -> AsyncIterator[None]:
    """Using an address link, throttled per client address and per token (the budgets
    of email-change links: both are links a signed-in person had sent to an address)."""
    async with _link_attempt(
        request, EMAIL_CHANGE_CONFIRM_BY_ADDRESS, EMAIL_CHANGE_CONFIRM_BY_TOKEN, body.token
    ):
        yield


@raises(OperatorsOnly)
async def require_operator(principal: CurrentPrincipal) -> Principal:
    """Platform operators only."""
    if not principal.is_operator:
        raise OperatorsOnly()
    return principal


@raises(TooManyAttempts)
async def sign_in_guard(request: Request, body: TokenRequest) -> AsyncIterator[None]:
    """Sign-in, throttled per account and per client address."""
    throttle = throttle_of(request)
    keys = [
        (SIGN_IN_BY_ACCOUNT, email_key(body.email)),
        (SIGN_IN_BY_ADDRESS, throttle.client(request)),
    ]
    async with throttle.attempt(keys, failures=(InvalidCredentials,)):
        yield


@raises(TooManyAttempts)
async def password_set_guard(request: Request, body: PasswordSet) -> AsyncIterator[None]:
    """Setting a password, throttled per client address and per token."""
    async with _link_attempt(request, PASSWORD_SET_BY_ADDRESS, PASSWORD_SET_BY_TOKEN, body.token):
        yield


@raises(TooManyAttempts)
async def confirmation_guard(request: Request, body: EmailConfirmation) -> AsyncIterator[None]:
    """Confirming a registration's address, throttled per client address and per token."""
    throttle = throttle_of(request)
    keys = [
        (CONFIRM_BY_ADDRESS, throttle.client(request)),
        (CONFIRM_BY_TOKEN, body.token),
    ]
    failures = (LinkInvalid, LinkUsed, LinkExpired, InvalidCredentials, WrongRegistrationPassword)
    async with throttle.attempt(keys, failures=failures):
        yield


@raises(TooManyAttempts)
async def confirmation_resend_guard(request: Request) -> AsyncIterator[None]:
    """Sending a confirmation link again, throttled per client address."""
    throttle = throttle_of(request)
    async with throttle.attempt(
        [(CONFIRM_RESEND_BY_ADDRESS, throttle.client(request))], failures=()
    ):
        yield


@raises(TooManyAttempts)
async def reset_request_guard(request: Request) -> AsyncIterator[None]:
    """The public reset request, throttled per client address."""
    throttle = throttle_of(request)
    async with throttle.attempt(
        [(RESET_REQUEST_BY_ADDRESS, throttle.client(request))], failures=()
    ):
        yield


AccountsService = Annotated[Accounts, Depends(get_accounts)]
PublicKeys = Annotated[Jwks, Depends(get_jwks)]
Operator = Annotated[Principal, Depends(require_operator)]
# scope="function": the attempt is settled before the answer leaves, so the client's
# next attempt finds its count as this one left it.
SignInGuard = Annotated[None, Depends(sign_in_guard, scope="function")]
PasswordSetGuard = Annotated[None, Depends(password_set_guard, scope="function")]
ResetRequestGuard = Annotated[None, Depends(reset_request_guard, scope="function")]
ConfirmationGuard = Annotated[None, Depends(confirmation_guard, scope="function")]
ConfirmationResendGuard = Annotated[None, Depends(confirmation_resend_guard, scope="function")]
ProfilesService = Annotated[Profiles, Depends(get_profiles)]
AddressesService = Annotated[Addresses, Depends(get_addresses)]
MergesService = Annotated[Merges, Depends(get_merges)]
AddressRequestGuard = Annotated[None, Depends(address_request_guard, scope="function")]
AddressConfirmGuard = Annotated[None, Depends(address_confirm_guard, scope="function")]
EmailChangeGuard = Annotated[None, Depends(email_change_guard, scope="function")]
EmailChangeConfirmGuard = Annotated[None, Depends(email_change_confirm_guard, scope="function")]
