"""What identity's routes take and answer (the guards in ``deps`` read the bodies too)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from prodigy_users.runtime.text import Email, Name, Secret, Text


class TokenRequest(BaseModel):
    """Credentials."""

    email: Text = Field(min_length=1, max_length=320, examples=["ana.lima@example.org"])
    password: Secret = Field(min_length=1, max_length=1024)


class AccessToken(BaseModel):
    """A bearer access token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until it expires.")


class PasswordSet(BaseModel):
    """A set-password or reset token and the new password."""

    token: Text = Field(min_length=1, max_length=512)
    password: Secret = Field(min_length=1, max_length=1024)


class ResetRequest(BaseModel):
    """Who forgot their password."""

    email: Email


class EmailConfirmation(BaseModel):
    """A registration's confirmation token (from the emailed link) and the password chosen
    while registering."""

    token: Text = Field(min_length=1, max_length=512)
    password: Secret = Field(min_length=1, max_length=1024)


class EmailConfirmed(BaseModel):
    """A confirmed registration: the account, and what it was registered for."""

    account_id: uuid.UUID
    email: str
    department_id: uuid.UUID | None = Field(
        description="The department the person registered with, if any."
    )
    request_id: uuid.UUID | None = Field(
        description=(
            "Membership's operation that the confirmation completes: "
            "`GET /v1/operations/{request_id}` at membership tells when the person has joined."
        )
    )


class ConfirmationResend(BaseModel):
    """Whose confirmation link to send again."""

    email: Email


class AccountPublic(BaseModel):
    """The caller's account."""

    account_id: uuid.UUID
    email: str
    name: str


class AccountChange(BaseModel):
    """What to change about the caller's account; absent fields stay as they are."""

    name: Name | None = Field(
        default=None,
        description="The full name. It belongs to the account: every department shows it.",
        examples=["Ana Lima"],
    )


class EmailChangeRequest(BaseModel):
    """A new login email for the caller, and their current password."""

    email: Email = Field(description="The new address; a link goes there to confirm it.")
    password: Secret = Field(min_length=1, max_length=1024)


class EmailChangeConfirmation(BaseModel):
    """An email-change token, from the link sent to the new address."""

    token: Text = Field(min_length=1, max_length=512)


class PasswordLink(BaseModel):
    """A set-password link for an operator to hand over."""

    url: str
    token: str
    expires_at: datetime


class MergeRequest(BaseModel):
    """Which account to merge into the one in the path."""

    account_id: uuid.UUID = Field(
        description="The account to merge away: its addresses, memberships and training "
        "records become the kept account's, and it no longer signs in."
    )


class MergeOut(BaseModel):
    """A merge as done (the same answer when asked again)."""

    kept_account_id: uuid.UUID
    merged_account_id: uuid.UUID
    merged_at: datetime = Field(description="When the merge was done (the first time).")


class AddressOut(BaseModel):
    """One of the caller's addresses."""

    address_id: uuid.UUID
    email: str = Field(description="The address, as typed when it was given.")
    login: bool = Field(description="True for the login email (it cannot be removed).")
    linked_at: datetime = Field(description="When the account came to hold it (UTC).")


class AddressList(BaseModel):
    """The caller's addresses: the login email first, then the linked ones."""

    items: list[AddressOut]


class AddressRequest(BaseModel):
    """An address to link to the caller's account; a link goes there to confirm it."""

    email: Email = Field(description="The address; a link goes there to confirm it.")


class AddressConfirmation(BaseModel):
    """An address-link token, from the link sent to the address."""

    token: Text = Field(min_length=1, max_length=512)
