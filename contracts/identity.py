"""Messages about global accounts: commands to identity, and identity's events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .email import Email
from .envelope import Payload

_ACCOUNT = Field(
    description="The global account's id (one per person, for life).",
    examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
)
_REQUEST = Field(
    description="Id of the request that asked for this (membership's operation id).",
    examples=["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],
)
_DEPARTMENT = Field(
    description="The department on whose behalf the account was asked for.",
    examples=["9b2f4c1a-8c53-4c71-9e4b-2d0b1f7d5e6a"],
)


class CreateAccount(Payload):
    """Command: create a global account for this email, unless any account already has it.

    Sent by membership when an admin adds a person or someone registers. Identity
    answers with ``AccountCreated`` or ``AccountCreationRejected`` carrying the same
    ``request_id``; with ``confirm_email``, first with ``AccountAwaitingConfirmation``,
    then ``AccountCreated`` once the address is confirmed or ``AccountRequestLapsed``.

    An address whose account was never confirmed (a registration nobody confirmed)
    counts as free: the request takes that account over instead of being rejected.

    Version 2 added ``confirm_email``; version 3 ``sealed_password_hash``, which
    replaces ``password_hash`` (no longer sent: a hash in the clear could be attacked
    offline by anyone who reads the topic).
    """

    TYPE: ClassVar[str] = "identity.create_account"
    VERSION: ClassVar[int] = 3

    request_id: uuid.UUID = _REQUEST
    email: Email = Field(description="Login email.", examples=["ana.lima@example.org"])
    name: str = Field(min_length=1, description="Full name.", examples=["Ana Lima"])
    department_id: uuid.UUID = _DEPARTMENT
    password_hash: str | None = Field(
        default=None,
        description=(
            "Deprecated, no longer sent (see `sealed_password_hash`): the Argon2 hash in "
            "the clear, as version 2 sent it. Identity still accepts it from commands "
            "written before the change."
        ),
    )
    sealed_password_hash: str | None = Field(
        default=None,
        description=(
            "Argon2id hash of a password the person chose while registering (never the "
            "password itself), sealed to identity's key (HPKE, RFC 9180: `hpke1.` and "
            "base64) so that only identity can open it; absent: identity emails a "
            "set-password link instead."
        ),
    )
    confirm_email: bool = Field(
        default=False,
        description=(
            "True: the person registered and has not proved they own the address. The "
            "account is made unconfirmed (it cannot sign in), a confirmation link is "
            "emailed to the address, and identity answers `AccountAwaitingConfirmation`; "
            "`AccountCreated` follows once the link is used, or `AccountRequestLapsed`."
        ),
    )


class AccountCreated(Payload):
    """Event: a new global account exists. It has no password until its owner sets one.

    For someone who registered and had to confirm their address, this is sent when
    they confirm it (followed by ``AccountEmailConfirmed``): until then the account is
    a reservation only identity knows of, deleted if nobody confirms it.

    Version 2 added ``batch_id``.
    """

    TYPE: ClassVar[str] = "identity.account_created"
    VERSION: ClassVar[int] = 2

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="Login email (as typed; unique case-insensitively).")
    name: str = Field(description="Full name.", examples=["Ana Lima"])
    request_id: uuid.UUID | None = Field(
        default=None, description="The `CreateAccount` request this answers, if any."
    )
    department_id: uuid.UUID | None = Field(
        default=None, description="Department that asked for the account, if any."
    )
    batch_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "The `CreateAccounts` batch (a bulk upload) the account was made for, if any; "
            "its `AccountBatchAnswered` lists the account too."
        ),
    )


class AccountCreationRejected(Payload):
    """Private event for membership only: a ``CreateAccount`` request was refused;
    nothing was created.

    It travels on the private ``identity.answers.v1`` (until this change it was on the
    public ``identity.events.v1``): it names the account that holds the address, which
    only the service that asked may know.
    """

    TYPE: ClassVar[str] = "identity.account_creation_rejected"

    request_id: uuid.UUID = _REQUEST
    email: Email = Field(description="The email that was asked for.")
    reason: Literal["account_exists"] = Field(
        description="`account_exists`: some account, anywhere, already uses this email.",
        examples=["account_exists"],
    )
    department_id: uuid.UUID = _DEPARTMENT
    existing_account_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "The account that already has the email. For membership alone (a new "
            "department's first admin joins with it); membership never shows it to "
            "the admin who asked, so the HTTP answer cannot be used to probe for accounts."
        ),
    )


class AccountAwaitingConfirmation(Payload):
    """Event: identity's answer to a ``CreateAccount`` with ``confirm_email``: the account
    exists unconfirmed and a confirmation link went to the address.

    The request is not finished: ``AccountCreated`` (same ``request_id``) follows when
    the link is used, or ``AccountRequestLapsed`` if it is not used before
    ``expires_at`` or another request takes the address over first.
    """

    TYPE: ClassVar[str] = "identity.account_awaiting_confirmation"

    request_id: uuid.UUID = _REQUEST
    email: Email = Field(description="The address the confirmation link was sent to.")
    department_id: uuid.UUID = _DEPARTMENT
    expires_at: datetime = Field(description="When the confirmation link stops working (UTC).")


class AccountRequestLapsed(Payload):
    """Event: a request that waited for its address to be confirmed ends without an account.

    ``expired``: nobody used the confirmation link in time (the unconfirmed account is
    deleted). ``superseded``: before it was confirmed, a newer request took the address
    over (another registration with it, or an admin adding or uploading that address).
    """

    TYPE: ClassVar[str] = "identity.account_request_lapsed"

    request_id: uuid.UUID = _REQUEST
    email: Email = Field(description="The address that was not confirmed.")
    department_id: uuid.UUID | None = Field(
        default=None, description="The department that asked for the account, if known."
    )
    reason: Literal["expired", "superseded"] = Field(
        description="`expired`: the link was not used in time; `superseded`: a newer "
        "request took the address over.",
        examples=["expired"],
    )


class AccountEmailConfirmed(Payload):
    """Event: the owner of an account proved they receive mail at its address (they used
    the link of the confirmation email, with their password).

    Sent with the ``AccountCreated`` of an account made by registering, in this order:
    ``AccountCreated``, ``PasswordChanged`` (the password chosen while registering),
    ``AccountEmailConfirmed``; accounts made any other way are confirmed from the start
    and get no such event.
    """

    TYPE: ClassVar[str] = "identity.account_email_confirmed"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="The confirmed login email.")
    confirmed_at: datetime = Field(description="When (UTC).")
    request_id: uuid.UUID | None = Field(
        default=None, description="The `CreateAccount` request the confirmation completes."
    )
    department_id: uuid.UUID | None = Field(
        default=None, description="Department the person registered with, if any."
    )


class Change(BaseModel):
    """One field of an account before and after a change."""

    model_config = ConfigDict(extra="allow", frozen=True)

    old: str = Field(description="The value before the change.", examples=["Ana Lyma"])
    new: str = Field(description="The value after the change.", examples=["Ana Lima"])


class AccountUpdated(Payload):
    """Event: an account's name or login email changed.

    The name and the login email belong to the account, not to a department: one
    change shows in every department the person belongs to (or belonged to), so a
    subscriber updates every row it keeps for ``account_id``. Only the fields that
    changed are present; each carries its value before and after.

    ``name``: the person edited it (``PATCH /v1/me``) or an admin of one of their
    departments did (a typo fix, ``department_id`` set). ``email``: the person asked
    for a new login email and confirmed it with the link sent to the new address;
    sent only once the change is done, never for a mere request (which could name
    an address another account holds).
    """

    TYPE: ClassVar[str] = "identity.account_updated"

    account_id: uuid.UUID = _ACCOUNT
    name: Change | None = Field(
        default=None, description="The full name, before and after (absent: unchanged)."
    )
    email: Change | None = Field(
        default=None,
        description="The login email, before and after, as typed (absent: unchanged).",
    )
    changed_by: uuid.UUID | None = Field(
        default=None,
        description=(
            "The account of whoever made the change: `account_id` itself when the person "
            "did, an admin's account otherwise; absent: an operator."
        ),
        examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
    )
    department_id: uuid.UUID | None = Field(
        default=None,
        description="The department whose admin made the change, if an admin did.",
    )
    occurred_at: datetime = Field(description="When identity made the change (UTC).")


class RenameAccount(Payload):
    """Command: set this account's name (an admin of one of the person's departments
    corrected it).

    Sent by membership once it has checked that ``changed_by`` administers
    ``department_id`` and that the account is a current member there. Identity sets
    the name and announces ``AccountUpdated``; a name equal to the current one changes
    nothing and announces nothing.
    """

    TYPE: ClassVar[str] = "identity.rename_account"

    account_id: uuid.UUID = _ACCOUNT
    name: str = Field(min_length=1, description="The new full name.", examples=["Ana Lima"])
    changed_by: uuid.UUID = Field(description="The admin who asked for it.")
    department_id: uuid.UUID = Field(description="The department the admin administers.")


class LinkAddress(Payload):
    """Command: link this address to this account (the person proved they receive mail
    there).

    Sent by membership when a person signed in as ``account_id`` accepts an invitation
    that was sent to ``email``: opening the emailed link proved control of the address,
    so identity links it with no further confirmation. An address the account holds
    already changes nothing; an address another account holds is not linked (identity
    logs it; the person has joined with the account they signed in with all the same).
    Identity announces a link with ``AddressLinked`` (public, without the address) and
    ``AccountAddressChanged`` (private, for membership's lookups).
    """

    TYPE: ClassVar[str] = "identity.link_address"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(
        description="The address to link, as it was invited.", examples=["tina.work@example.org"]
    )
    department_id: uuid.UUID | None = Field(
        default=None, description="The department whose invitation proved the address."
    )
    invitation_id: uuid.UUID | None = Field(
        default=None, description="The invitation that was sent to the address."
    )


class AddressLinked(Payload):
    """Event: an address was linked to an account (besides its login email).

    From then on the address finds the account wherever an address is looked up
    (adding, inviting, importing, registering, password reset requests), and no other
    account can take it; signing in stays by the login email only. The address itself
    is not in this public event: which addresses a person holds is not for other teams
    (membership learns it from the private ``AccountAddressChanged``).
    """

    TYPE: ClassVar[str] = "identity.address_linked"

    account_id: uuid.UUID = _ACCOUNT
    address_id: uuid.UUID = Field(description="The linked address's id (for unlinking).")
    via: Literal["invitation", "confirmation"] = Field(
        description="How the person proved the address: they accepted an invitation sent to "
        "it while signed in, or they opened the confirmation link sent to it."
    )
    linked_at: datetime = Field(description="When (UTC).")


class AddressUnlinked(Payload):
    """Event: the person unlinked one of their linked addresses; it is free again (the
    address itself is not in this public event, as for ``AddressLinked``)."""

    TYPE: ClassVar[str] = "identity.address_unlinked"

    account_id: uuid.UUID = _ACCOUNT
    address_id: uuid.UUID = Field(description="The unlinked address's id.")
    unlinked_at: datetime = Field(description="When (UTC).")


class AccountMerged(Payload):
    """Event: an operator merged two accounts of one person; ``kept_account_id`` stays.

    From then on the merged account holds no address (its login email and linked
    addresses are the kept account's linked addresses), nobody signs in as it, and its
    tokens are refused (``TokensRevoked``, reason ``account_merged``). Whatever a
    subscriber keeps per account for the merged one is now the kept account's:
    membership moves its memberships (one ``membership.member_merged`` per department,
    after this), reporting its training records. An event that still names the merged
    account later (another system's view may lag) means the kept one.

    Sent once per merge: asking again for the same merge changes nothing and sends
    nothing.
    """

    TYPE: ClassVar[str] = "identity.account_merged"

    kept_account_id: uuid.UUID = Field(
        description="The account that stays, and now holds everything of the other.",
        examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
    )
    merged_account_id: uuid.UUID = Field(
        description="The account merged into it: it no longer signs in or holds anything.",
        examples=["7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"],
    )
    merged_at: datetime = Field(description="When (UTC).")


class AccountAddressChanged(Payload):
    """Private event (for membership): an address was linked to, or unlinked from, an
    account; membership keeps its lookups of addresses (already a member, known
    account) in step with it."""

    TYPE: ClassVar[str] = "identity.account_address_changed"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="The address, as typed when it was linked.")
    change: Literal["linked", "unlinked"] = Field(description="What happened to it.")
    occurred_at: datetime = Field(description="When (UTC).")


class AddressConfirmationIssued(Payload):
    """Private event for notifications only: email the link that links this address to
    the account (the person asked, ``POST /v1/me/addresses``).

    The single-use token travels sealed to notifications' key, as for every link;
    identity stores only its hash. Sent whether or not another account holds the
    address (the request never tells); the link says so when opened.
    """

    TYPE: ClassVar[str] = "identity.address_confirmation_issued"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="The address to link: where to send the link.")
    name: str = Field(description="Whom to greet.")
    sealed_token: str = Field(
        description="The single-use token, sealed to notifications' key (HPKE: `hpke1.` and "
        "base64)."
    )
    expires_at: datetime = Field(description="When the link stops working (UTC).")


class PasswordChanged(Payload):
    """Event: an account's password was set or changed (no secret in it)."""

    TYPE: ClassVar[str] = "identity.password_changed"

    account_id: uuid.UUID = _ACCOUNT
    changed_at: datetime = Field(description="When (UTC).")


class TokensRevoked(Payload):
    """Event: the account's access tokens issued before ``not_before`` are no longer accepted.

    Identity sends it when the password is set or reset, when a registration's
    address is confirmed, and when the person signs out everywhere. Every service that
    verifies tokens keeps the latest ``not_before`` per account and refuses (401) a
    token whose ``iat`` is earlier; tokens issued afterwards (``iat`` carries
    microseconds) are accepted. Only the latest matters: a receiver keeps the later
    of what it has and what it reads, so order and redelivery change nothing.
    """

    TYPE: ClassVar[str] = "identity.tokens_revoked"

    account_id: uuid.UUID = _ACCOUNT
    not_before: datetime = Field(
        description="Tokens issued (`iat`) before this instant (UTC, microseconds) are refused.",
        examples=["2026-12-05T07:45:12.345678Z"],
    )
    reason: Literal[
        "password_set", "email_confirmed", "signed_out_everywhere", "account_merged"
    ] = Field(
        description="Why: `password_set` (a set-password or reset link was used), "
        "`email_confirmed` (a registration's address was confirmed), "
        "`signed_out_everywhere` (the person asked for it), `account_merged` (an "
        "operator merged the account into another: none of its tokens is accepted again).",
        examples=["password_set"],
    )


class PasswordLinkIssued(Payload):
    """Private event for notifications only: email this set-password link.

    The single-use token travels sealed (HPKE, RFC 9180) to notifications' public
    key: identity stores only its hash, and neither identity's outbox nor the
    topic holds it in the clear. The topic is readable by notifications alone.
    """

    TYPE: ClassVar[str] = "identity.password_link_issued"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="Where to send the link.")
    name: str = Field(description="Whom to greet.")
    purpose: Literal["welcome", "reset"] = Field(
        description="`welcome`: a new account's credentials email; `reset`: a password reset.",
        examples=["welcome"],
    )
    sealed_token: str = Field(
        description=(
            "The single-use token, encrypted to notifications' sealing key: `hpke1.` and "
            "base64 (keys made before HPKE: RSA-OAEP, bare base64)."
        )
    )
    expires_at: datetime = Field(description="When the link stops working (UTC).")
    department_id: uuid.UUID | None = Field(
        default=None, description="Department on whose behalf the link was issued, if any."
    )


class EmailConfirmationIssued(Payload):
    """Private event for notifications only: email this confirmation link.

    Someone registered with this address; the link (used with the password they
    chose) proves they own it. The token travels sealed, as set-password tokens do.
    """

    TYPE: ClassVar[str] = "identity.email_confirmation_issued"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="Where to send the link.")
    name: str = Field(description="Whom to greet (the name typed while registering).")
    sealed_token: str = Field(
        description="The single-use confirmation token, sealed to notifications' key "
        "(as in `PasswordLinkIssued`)."
    )
    expires_at: datetime = Field(description="When the link stops working (UTC).")
    department_id: uuid.UUID | None = Field(
        default=None, description="The department the person registered with, if any."
    )
    resent: bool = Field(default=False, description="True when the person asked for it again.")


class EmailChangeConfirmationIssued(Payload):
    """Private event for notifications only: email this link to the address a person
    asked to use as their new login email.

    Opening the link (its token) proves the person receives mail there; only then does
    the login email change (``AccountUpdated``). The token travels sealed, as
    set-password tokens do. Sent whether or not another account holds the address, so
    that asking tells nothing; the link then says so when opened.
    """

    TYPE: ClassVar[str] = "identity.email_change_confirmation_issued"

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="The new address: where to send the link.")
    name: str = Field(description="Whom to greet.")
    sealed_token: str = Field(
        description="The single-use email-change token, sealed to notifications' key "
        "(as in `PasswordLinkIssued`)."
    )
    expires_at: datetime = Field(description="When the link stops working (UTC).")


class PasswordLink(BaseModel):
    """One set-password link of a ``PasswordLinksIssued`` batch."""

    model_config = ConfigDict(extra="allow", frozen=True)

    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="Where to send the link.")
    name: str = Field(description="Whom to greet.")
    sealed_token: str = Field(
        description="The single-use token, sealed to notifications' key: a batch's tokens "
        "share one HPKE-sealed data key (`hpke1k.<sealed data key>.<AES-GCM ciphertext>`), "
        "or, with a legacy RSA key, each is sealed as in ``PasswordLinkIssued``."
    )


class PasswordLinksIssued(Payload):
    """Private event for notifications only: email each of these set-password links.

    The batch form of ``PasswordLinkIssued``, for the new accounts of one
    ``CreateAccounts`` batch (a bulk upload): one message instead of one per person.
    Each link is emailed exactly as its own ``PasswordLinkIssued`` would be, and its
    token is sealed the same way.
    """

    TYPE: ClassVar[str] = "identity.password_links_issued"

    request_id: uuid.UUID = Field(
        description="The ``CreateAccounts`` batch whose new accounts these are.",
        examples=["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],
    )
    department_id: uuid.UUID | None = Field(
        default=None, description="Department on whose behalf the links were issued, if any."
    )
    purpose: Literal["welcome", "reset"] = Field(
        description="`welcome`: new accounts' credentials emails; `reset`: password resets.",
        examples=["welcome"],
    )
    expires_at: datetime = Field(description="When the links stop working (UTC).")
    links: list[PasswordLink] = Field(
        min_length=1, max_length=1000, description="One per account (distinct accounts)."
    )


class IssuePasswordReset(Payload):
    """Command: email this account a password-reset link (an admin asked for it)."""

    TYPE: ClassVar[str] = "identity.issue_password_reset"

    account_id: uuid.UUID = _ACCOUNT
    department_id: uuid.UUID | None = Field(
        default=None, description="Department whose admin asked, for the email's wording."
    )


class PasswordResetRequested(Payload):
    """Private event, identity to itself: someone asked for a reset email for this address.

    The public reset request only records this and answers ``202``, so the answer
    takes the same time whether or not the address has an account; identity's
    consumer then looks the address up and, for an account under its cap of reset
    emails, issues the link (``PasswordLinkIssued``). Nobody else reads the topic.
    """

    TYPE: ClassVar[str] = "identity.password_reset_requested"

    email: Email = Field(
        description="The address as typed (it may have no account).",
        examples=["ana.lima@example.org"],
    )


class AccountRequest(BaseModel):
    """One address of a ``CreateAccounts`` batch."""

    model_config = ConfigDict(extra="allow", frozen=True)

    email: Email = Field(description="Login email.", examples=["ana.lima@example.org"])
    name: str = Field(min_length=1, description="Full name.", examples=["Ana Lima"])


class CreateAccounts(Payload):
    """Command: create a global account for each of these emails that no account has yet.

    The batch form of ``CreateAccount``, sent by membership for a bulk upload: one
    message and one transaction for many people, under the same one-account-per-email
    rule. Each new account gets its ``AccountCreated`` event and its credentials email;
    identity answers the whole batch with one ``AccountBatchAnswered`` carrying the same
    ``request_id``.
    """

    TYPE: ClassVar[str] = "identity.create_accounts"

    request_id: uuid.UUID = Field(
        description="Id of this batch (membership's import batch id); the answer carries it.",
        examples=["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],
    )
    department_id: uuid.UUID = _DEPARTMENT
    accounts: list[AccountRequest] = Field(
        min_length=1,
        max_length=1000,
        description="The people to make accounts for (distinct emails, case-insensitively).",
    )


class BatchAccount(BaseModel):
    """An address of a batch and the account that has it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    email: Email = Field(description="The address as it was asked for.")
    account_id: uuid.UUID = _ACCOUNT


class AccountBatchAnswered(Payload):
    """Private event for membership only: identity's answer to a ``CreateAccounts`` batch.

    Every address of the batch is in exactly one list: ``created`` (a new account,
    announced by its own ``AccountCreated``) or ``existing`` (some account, anywhere,
    already had the address; nothing was created for it).
    """

    TYPE: ClassVar[str] = "identity.account_batch_answered"

    request_id: uuid.UUID = Field(
        description="The ``CreateAccounts`` batch this answers.",
        examples=["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],
    )
    department_id: uuid.UUID = _DEPARTMENT
    created: list[BatchAccount] = Field(description="Addresses that got a new account.")
    existing: list[BatchAccount] = Field(
        description=(
            "Addresses that already had an account, with that account's id (for our own "
            "services: membership invites these people instead of adding them)."
        )
    )
