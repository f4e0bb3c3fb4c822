"""The topic registry: every topic, who writes it, who reads it, and how long it keeps.

Topic names carry the major version of their contract (``.v1``): a breaking
change gets a new topic and both run side by side while subscribers move.
Deploy manifests (Strimzi ``KafkaTopic``, and ``KafkaUser`` grants) are generated
from this table. Contracts import no service, so ``owner`` and ``consumers`` are
written here and checked against the services' code: tests/deploy fails unless a
topic's ``consumers`` are exactly the services whose handler tables subscribe to
it, and its ``owner`` (for our topics) the one service that emits its events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .envelope import Payload
from .identity import (
    AccountAddressChanged,
    AccountAwaitingConfirmation,
    AccountBatchAnswered,
    AccountCreated,
    AccountCreationRejected,
    AccountEmailConfirmed,
    AccountMerged,
    AccountRequestLapsed,
    AccountUpdated,
    AddressConfirmationIssued,
    AddressLinked,
    AddressUnlinked,
    CreateAccount,
    CreateAccounts,
    EmailChangeConfirmationIssued,
    EmailConfirmationIssued,
    IssuePasswordReset,
    LinkAddress,
    PasswordChanged,
    PasswordLinkIssued,
    PasswordLinksIssued,
    PasswordResetRequested,
    RenameAccount,
    TokensRevoked,
)
from .membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    ImportFinished,
    ImportStarted,
    InvitationAccepted,
    InvitationExpired,
    InvitationLinkIssued,
    InvitationReminded,
    InvitationRevoked,
    MemberAdded,
    MemberInvited,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberMerged,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
    RegistrationLinkChanged,
    SignInToJoinRequested,
    WelcomeRequested,
)
from .notifications import EmailDeadLettered, EmailFailed, EmailSent
from .training import CertificateRevoked, CourseAssigned, CourseCompleted

DAY_MS = 24 * 60 * 60 * 1000
UNLIMITED = -1

# Producers outside this system that own a topic of the registry (its namespace and
# ``owner``): we consume their topics but never write them.
EXTERNAL_OWNERS: dict[str, str] = {"training": "the training platform"}


@dataclass(frozen=True)
class Topic:
    """One topic of the bus.

    ``key`` says what the partition key is: everything with the same key is in
    order. ``retention_ms`` of ``UNLIMITED`` means a consumer can rebuild its
    state by reading from the beginning (reporting's replay relies on it).
    """

    name: str
    description: str
    key: str
    owner: str
    consumers: tuple[str, ...]
    payloads: tuple[type[Payload], ...]
    partitions: int = 6
    retention_ms: int = UNLIMITED
    cleanup_policy: Literal["delete", "compact"] = "delete"
    private: bool = False
    dlq_retention_ms: int = 30 * DAY_MS
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dlq(self) -> str:
        """The dead-letter topic for messages a consumer of this topic could not read."""
        return f"{self.name}.dlq"


IDENTITY_COMMANDS = Topic(
    name="identity.commands.v1",
    description="Private: requests to identity, e.g. create an account for a new member (a "
    "registration's password hash travels sealed to identity's key).",
    key="normalised email for account requests (in order per address), the batch id for "
    "batches of them, else account_id",
    owner="membership",
    consumers=("identity",),
    payloads=(CreateAccount, CreateAccounts, IssuePasswordReset, RenameAccount, LinkAddress),
    retention_ms=7 * DAY_MS,
    private=True,
)
IDENTITY_EVENTS = Topic(
    name="identity.events.v1",
    description="What happened to global accounts.",
    key="account_id (request_id for answers about a request: awaiting confirmation, lapsed)",
    owner="identity",
    consumers=("membership", "notifications", "reporting"),
    payloads=(
        AccountCreated,
        PasswordChanged,
        AccountAwaitingConfirmation,
        AccountRequestLapsed,
        AccountEmailConfirmed,
        AccountUpdated,
        AddressLinked,
        AddressUnlinked,
        AccountMerged,
    ),
)
# Answers that name the account already holding an address: for membership, which
# asked, and nobody else (an email -> account map is not for other teams).
IDENTITY_ANSWERS = Topic(
    name="identity.answers.v1",
    description="Private: identity's refusals of account requests, naming the account that "
    "already has the address, and the addresses linked to or unlinked from accounts.",
    key="request_id (an address linked or unlinked: account_id)",
    owner="identity",
    consumers=("membership",),
    payloads=(AccountCreationRejected, AccountAddressChanged),
    retention_ms=7 * DAY_MS,
    private=True,
)
# Apart from identity.events.v1 so that an upload's members are made as soon as each
# batch is answered, not after membership has read every account event before it.
# Private for the same reason as identity.answers.v1: it maps addresses to accounts.
IDENTITY_ACCOUNT_BATCHES = Topic(
    name="identity.account_batches.v1",
    description="Private: identity's answers to batches of account requests (bulk uploads), "
    "naming the accounts that already had an address.",
    key="request_id (the batch)",
    owner="identity",
    consumers=("membership",),
    payloads=(AccountBatchAnswered,),
    retention_ms=7 * DAY_MS,
    private=True,
)
IDENTITY_CREDENTIALS = Topic(
    name="identity.credentials.v1",
    description="Private: set-password, reset, email-confirmation and email-change links for "
    "notifications to email.",
    key="account_id (a batch of links: its request_id)",
    owner="identity",
    consumers=("notifications",),
    payloads=(
        PasswordLinkIssued,
        PasswordLinksIssued,
        EmailConfirmationIssued,
        EmailChangeConfirmationIssued,
        AddressConfirmationIssued,
    ),
    retention_ms=7 * DAY_MS,
    private=True,
)
# Identity's own queue of public reset requests: the request is answered once it is
# recorded here, the lookup and the email happen when identity reads it back.
IDENTITY_RESET_REQUESTS = Topic(
    name="identity.reset_requests.v1",
    description="Private: public password-reset requests, worked by identity after it answered.",
    key="the address's email key (in order per address)",
    owner="identity",
    consumers=("identity",),
    payloads=(PasswordResetRequested,),
    retention_ms=DAY_MS,
    private=True,
)
# Apart from identity.events.v1: the services that only verify tokens read these few
# small events and nothing else about accounts, and a revocation never waits behind a
# run of account events.
IDENTITY_REVOCATIONS = Topic(
    name="identity.revocations.v1",
    description="Access-token cut-offs: tokens of an account issued before `not_before` are "
    "refused by every service.",
    key="account_id",
    owner="identity",
    consumers=("membership", "notifications", "reporting"),
    payloads=(TokensRevoked,),
    # Access tokens live an hour; a week covers any outage a consumer comes back from.
    retention_ms=7 * DAY_MS,
)
MEMBERSHIP_EVENTS = Topic(
    name="membership.events.v1",
    description="What happened to departments and their members, in order per department.",
    key="department_id",
    owner="membership",
    consumers=("notifications", "reporting"),
    payloads=(
        DepartmentCreated,
        MemberAdded,
        MemberInvited,
        InvitationReminded,
        InvitationRevoked,
        InvitationExpired,
        InvitationAccepted,
        MemberRoleChanged,
        MemberStatusChanged,
        EmployeeIdSet,
        GroupCreated,
        GroupRenamed,
        GroupDeleted,
        MemberJoinedGroup,
        MemberLeftGroup,
        MemberRemoved,
        MemberRestored,
        MemberMerged,
        RegistrationLinkChanged,
        ImportStarted,
        ImportFinished,
    ),
)
MEMBERSHIP_MAIL = Topic(
    name="membership.mail.v1",
    description="Private: invitation links, welcome requests and sign-in-to-join notices for "
    "notifications to email.",
    key="department_id",
    owner="membership",
    consumers=("notifications",),
    payloads=(InvitationLinkIssued, WelcomeRequested, SignInToJoinRequested),
    retention_ms=7 * DAY_MS,
    private=True,
)
NOTIFICATION_EVENTS = Topic(
    name="notifications.events.v1",
    description="Emails sent and emails given up on.",
    key="department_id (account email when there is none)",
    owner="notifications",
    consumers=(),
    payloads=(EmailSent, EmailFailed),
    retention_ms=90 * DAY_MS,
)
NOTIFICATION_DEAD_LETTERS = Topic(
    name="notifications.email_dead_letters.v1",
    description=(
        "Emails given up on (refused for good, or the last attempt failed), for operators to "
        "follow up; the same transaction writes `email_failed` to notifications.events.v1."
    ),
    key="department_id (account email when there is none)",
    owner="notifications",
    consumers=(),
    payloads=(EmailDeadLettered,),
    retention_ms=30 * DAY_MS,
)
TRAINING_EVENTS = Topic(
    name="training.events.v1",
    description=(
        "Training from the training platform: courses assigned to people's plans, completions "
        "with their certificates, revoked certificates; in order per person. Kept forever: "
        "reporting rebuilds plans and transcripts from it by replay, and nothing else holds "
        "them."
    ),
    key="account_id",
    owner="training",
    consumers=("reporting",),
    payloads=(CourseAssigned, CourseCompleted, CertificateRevoked),
    retention_ms=UNLIMITED,
)

TOPICS: tuple[Topic, ...] = (
    IDENTITY_COMMANDS,
    IDENTITY_EVENTS,
    IDENTITY_ANSWERS,
    IDENTITY_ACCOUNT_BATCHES,
    IDENTITY_CREDENTIALS,
    IDENTITY_RESET_REQUESTS,
    IDENTITY_REVOCATIONS,
    MEMBERSHIP_EVENTS,
    MEMBERSHIP_MAIL,
    NOTIFICATION_EVENTS,
    NOTIFICATION_DEAD_LETTERS,
    TRAINING_EVENTS,
)

PAYLOADS: dict[str, type[Payload]] = {p.TYPE: p for t in TOPICS for p in t.payloads}


def topic_of(payload: type[Payload]) -> Topic:
    """The one topic a payload type travels on."""
    for topic in TOPICS:
        if payload in topic.payloads:
            return topic
    raise KeyError(payload.TYPE)


def consumed_by(service: str) -> tuple[Topic, ...]:
    """Topics a service reads."""
    return tuple(t for t in TOPICS if service in t.consumers)


def produced_by(service: str) -> tuple[Topic, ...]:
    """Topics a service writes."""
    return tuple(t for t in TOPICS if t.owner == service)
