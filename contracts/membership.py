"""Events about departments and the people in them. Partitioned by department."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .email import Email
from .envelope import Payload

Role = Literal["admin", "officer", "member"]
Status = Literal["active", "inactive"]

_DEPARTMENT = Field(
    description="The department (also the partition key).",
    examples=["9b2f4c1a-8c53-4c71-9e4b-2d0b1f7d5e6a"],
)
_ACCOUNT = Field(
    description="The person's global account id.",
    examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
)


class DepartmentCreated(Payload):
    """Event: a department exists (created by a platform operator)."""

    TYPE: ClassVar[str] = "membership.department_created"

    department_id: uuid.UUID = _DEPARTMENT
    name: str = Field(description="Display name.", examples=["Springfield EMS"])


class MemberAdded(Payload):
    """Event: a person became a member of a department."""

    TYPE: ClassVar[str] = "membership.member_added"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    name: str = Field(description="Full name.", examples=["Ana Lima"])
    email: Email = Field(description="The person's login email.")
    role: Role = Field(description="`admin`, `officer` or `member`.", examples=["member"])
    status: Status = Field(
        default="active",
        description="Reporting flag only: inactive people keep full access.",
        examples=["active"],
    )
    employee_id: str | None = Field(default=None, description="Department-local employee ID.")
    joined_at: datetime = Field(description="When the membership began (UTC).")
    added_by: uuid.UUID | None = Field(
        default=None, description="Account of the admin who added them, if any."
    )
    via: Literal["admin_add", "operator", "invitation", "registration_link", "import"] = Field(
        default="admin_add", description="How the person joined.", examples=["admin_add"]
    )
    import_id: uuid.UUID | None = Field(
        default=None,
        description="The bulk upload that added them (`via` `import`), if one did.",
        examples=["0c4e2f7a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"],
    )


_INVITATION = Field(
    description="The invitation.", examples=["5e0b1a7c-2f3d-4c1e-9a8b-7c6d5e4f3a2b"]
)
_BY = Field(default=None, description="Account of the admin who did it, if any.")
_BY_IMPORT = Field(
    default=None,
    description="The bulk upload that made the change, if one did (its admin is in the "
    "`..._by` field).",
    examples=["0c4e2f7a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"],
)


class MemberInvited(Payload):
    """Event: an address was invited to join the department.

    Version 2 added ``name``.
    """

    TYPE: ClassVar[str] = "membership.member_invited"
    VERSION: ClassVar[int] = 2

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    email: Email = Field(description="The invited address.")
    role: Role = Field(description="The role they get when they accept.")
    expires_at: datetime = Field(description="When the invitation lapses (UTC).")
    invited_by: uuid.UUID | None = _BY
    name: str | None = Field(
        default=None,
        description="The name the admin pasted with the address (`Sam Two <sam@x.org>`), or "
        "the Name column of a bulk upload, if any. Only what the admin typed: the account's "
        "own name comes with `member_added`.",
        examples=["Sam Two"],
    )


class InvitationReminded(Payload):
    """Event: an invitation was sent again."""

    TYPE: ClassVar[str] = "membership.invitation_reminded"

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    email: Email = Field(description="The invited address.")
    reminded_by: uuid.UUID | None = _BY


class InvitationRevoked(Payload):
    """Event: an admin withdrew an invitation; its link no longer works."""

    TYPE: ClassVar[str] = "membership.invitation_revoked"

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    email: Email = Field(description="The invited address.")
    revoked_by: uuid.UUID | None = _BY


class InvitationExpired(Payload):
    """Event: an invitation lapsed unused."""

    TYPE: ClassVar[str] = "membership.invitation_expired"

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    email: Email = Field(description="The invited address.")


class InvitationAccepted(Payload):
    """Event: an invitation was used. The ``MemberAdded`` or ``MemberRestored`` it made
    comes just before it (same transaction, same department key)."""

    TYPE: ClassVar[str] = "membership.invitation_accepted"

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="The invited address (the account may use another).")


class MemberRoleChanged(Payload):
    """Event: a member's role changed."""

    TYPE: ClassVar[str] = "membership.member_role_changed"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    role: Role = Field(description="The new role.")
    previous_role: Role = Field(description="The role before.")
    changed_by: uuid.UUID | None = _BY
    import_id: uuid.UUID | None = _BY_IMPORT


class MemberStatusChanged(Payload):
    """Event: a member was marked active or inactive (a reporting flag only)."""

    TYPE: ClassVar[str] = "membership.member_status_changed"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    status: Status = Field(description="The new status.")
    changed_by: uuid.UUID | None = _BY
    import_id: uuid.UUID | None = _BY_IMPORT


class EmployeeIdSet(Payload):
    """Event: a member's employee ID (unique in the department; used for SSO) was set or cleared."""

    TYPE: ClassVar[str] = "membership.employee_id_set"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    employee_id: str | None = Field(description="The new employee ID; null clears it.")
    changed_by: uuid.UUID | None = _BY
    import_id: uuid.UUID | None = _BY_IMPORT


class GroupCreated(Payload):
    """Event: a group was created in the department."""

    TYPE: ClassVar[str] = "membership.group_created"

    department_id: uuid.UUID = _DEPARTMENT
    group_id: uuid.UUID = Field(description="The group.")
    name: str = Field(description="Its name (unique in the department).", examples=["Night shift"])


class GroupRenamed(Payload):
    """Event: a group got a new name."""

    TYPE: ClassVar[str] = "membership.group_renamed"

    department_id: uuid.UUID = _DEPARTMENT
    group_id: uuid.UUID = Field(description="The group.")
    name: str = Field(description="The new name.")


class GroupDeleted(Payload):
    """Event: a group was deleted (its members stay in the department)."""

    TYPE: ClassVar[str] = "membership.group_deleted"

    department_id: uuid.UUID = _DEPARTMENT
    group_id: uuid.UUID = Field(description="The group.")


class MemberJoinedGroup(Payload):
    """Event: a member was put in a group."""

    TYPE: ClassVar[str] = "membership.member_joined_group"

    department_id: uuid.UUID = _DEPARTMENT
    group_id: uuid.UUID = Field(description="The group.")
    account_id: uuid.UUID = _ACCOUNT
    changed_by: uuid.UUID | None = _BY
    import_id: uuid.UUID | None = _BY_IMPORT


class MemberLeftGroup(Payload):
    """Event: a member was taken out of a group (also when the group is deleted)."""

    TYPE: ClassVar[str] = "membership.member_left_group"

    department_id: uuid.UUID = _DEPARTMENT
    group_id: uuid.UUID = Field(description="The group.")
    account_id: uuid.UUID = _ACCOUNT
    changed_by: uuid.UUID | None = _BY
    import_id: uuid.UUID | None = _BY_IMPORT


class MemberRemoved(Payload):
    """Event: a person left the department. Their account and records stay."""

    TYPE: ClassVar[str] = "membership.member_removed"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    removed_by: uuid.UUID | None = _BY


class MemberRestored(Payload):
    """Event: a removed person is back, with their history (groups, employee ID, role)."""

    TYPE: ClassVar[str] = "membership.member_restored"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    name: str = Field(description="Full name.")
    email: Email = Field(description="The person's login email.")
    role: Role = Field(description="Role on return.")
    status: Status = Field(description="Status on return.")
    employee_id: str | None = Field(default=None, description="Employee ID, kept from before.")
    group_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Groups, kept from before."
    )
    restored_at: datetime = Field(description="When (UTC).")
    via: Literal["invitation", "registration_link", "admin_add", "import"] = Field(
        default="invitation", description="How they came back."
    )
    restored_by: uuid.UUID | None = Field(
        default=None,
        description="Account of the admin behind the return, if any: who added them back, "
        "uploaded the import or sent the invitation (`via` says which); null for an operator "
        "and for the registration link.",
    )


class MemberMerged(Payload):
    """Event: an operator merged two accounts of one person (``identity.account_merged``),
    and this department's membership of the merged account is now the kept account's.

    It says the kept account's membership as it is after the merge, whole: a
    subscriber that rebuilds the member list drops ``merged_account_id`` and sets
    ``account_id`` to these values (groups included), as for ``member_restored``.
    ``removed`` true: the person is not a current member (both memberships were
    removed ones). Sent once per department where the merged account had a
    membership, current or removed; nobody is emailed.

    Which membership survives when both accounts had one: a current one over a
    removed one, else the kept account's; its role and status stay, the employee ID is
    the kept account's (else the merged one's), the groups are both accounts' groups.
    """

    TYPE: ClassVar[str] = "membership.member_merged"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = Field(
        description="The kept account: the membership is this account's from now on.",
        examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
    )
    merged_account_id: uuid.UUID = Field(
        description="The merged account: it is no longer in the department at all (no "
        "removed membership is left behind either).",
        examples=["7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"],
    )
    name: str = Field(description="Full name (the kept account's).")
    email: Email = Field(description="The kept account's login email.")
    role: Role = Field(description="Role after the merge.")
    status: Status = Field(description="Status after the merge.")
    employee_id: str | None = Field(default=None, description="Employee ID after the merge.")
    group_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Every group of the membership after the merge."
    )
    joined_at: datetime = Field(description="When the person first joined (either account).")
    removed: bool = Field(
        default=False,
        description="True: the membership is a removed one (neither account was a current "
        "member); a member list leaves it out.",
    )
    merged_at: datetime = Field(description="When the accounts were merged (UTC).")


class RegistrationLinkChanged(Payload):
    """Event: the department's self-registration link was rotated or switched off."""

    TYPE: ClassVar[str] = "membership.registration_link_changed"

    department_id: uuid.UUID = _DEPARTMENT
    enabled: bool = Field(description="False: self-registration is off.")
    role: Role | None = Field(default=None, description="Role people get when they join.")
    expires_at: datetime | None = Field(default=None, description="When the link lapses.")
    allowed_domains: list[str] = Field(
        default_factory=list, description="Email domains allowed to join (empty: any)."
    )


class InvitationLinkIssued(Payload):
    """Private event for notifications only: email this invitation (or reminder) link.

    The token travels sealed to notifications' key, as identity's links do.
    """

    TYPE: ClassVar[str] = "membership.invitation_link_issued"

    department_id: uuid.UUID = _DEPARTMENT
    invitation_id: uuid.UUID = _INVITATION
    email: Email = Field(description="Where to send it.")
    role: Role = Field(description="The role offered.")
    sealed_token: str = Field(description="The invitation token, sealed to notifications' key.")
    expires_at: datetime = Field(description="When the invitation lapses (UTC).")
    reminder: bool = Field(default=False, description="True for a reminder.")
    invited_by_name: str | None = Field(default=None, description="Who invited them.")
    name: str | None = Field(
        default=None,
        description="Whom to greet: the name pasted with the address, if any.",
    )


class WelcomeRequested(Payload):
    """Private event for notifications only: greet someone who just joined."""

    TYPE: ClassVar[str] = "membership.welcome_requested"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    email: Email = Field(description="Where to send it.")
    name: str = Field(description="Whom to greet.")


class SignInToJoinRequested(Payload):
    """Private event for notifications only: someone tried to register with an address
    that already has an account; tell the address's owner, who can sign in to join.

    Registering answers the same whether or not the address has an account (nobody
    learns which addresses do); this email is what the owner gets instead of a
    confirmation link. The link is the invitation's or the registration link's own,
    its token sealed to notifications' key.
    """

    TYPE: ClassVar[str] = "membership.sign_in_to_join_requested"

    department_id: uuid.UUID = _DEPARTMENT
    email: Email = Field(description="Where to send it (the address that was typed).")
    via: Literal["invitation", "registration_link"] = Field(
        description="Which link was used: an invitation or the department's registration link.",
        examples=["registration_link"],
    )
    sealed_token: str = Field(description="The link's token, sealed to notifications' key.")
    expires_at: datetime | None = Field(
        default=None, description="When the link lapses (UTC), if it does."
    )


ImportMode = Literal["add", "update"]
_IMPORT = Field(
    description="The bulk upload (its results are at `GET .../imports/{import_id}`).",
    examples=["0c4e2f7a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"],
)
_ROWS = Field(description="Rows in the file (below its header).", examples=[250])


class ImportStarted(Payload):
    """Event: an admin uploaded a file of users; its rows are being processed.

    A preview (``dry_run``) changes nothing and announces nothing. ``ImportFinished``
    follows once every row has its outcome, also after a restart in between.
    """

    TYPE: ClassVar[str] = "membership.import_started"

    department_id: uuid.UUID = _DEPARTMENT
    import_id: uuid.UUID = _IMPORT
    rows: int = _ROWS
    mode: ImportMode = Field(
        description="`add`: existing members stay as they are; `update`: they take their row's "
        "role, employee ID and groups.",
        examples=["add"],
    )
    file_name: str | None = Field(
        default=None, description="Name of the uploaded file.", examples=["staff.xlsx"]
    )
    started_by: uuid.UUID | None = _BY


class ImportFinished(Payload):
    """Event: every row of a bulk upload has its outcome; how many of each.

    The people themselves are announced by their own events (``MemberAdded`` with
    ``via`` `import`, ``MemberInvited``, role and group changes), before this one.
    """

    TYPE: ClassVar[str] = "membership.import_finished"

    department_id: uuid.UUID = _DEPARTMENT
    import_id: uuid.UUID = _IMPORT
    rows: int = _ROWS
    created: int = Field(description="New accounts and memberships.", examples=[240])
    invited: int = Field(
        description="Addresses that already had an account: invited instead.", examples=[5]
    )
    already_member: int = Field(description="Already members; left as they were.", examples=[2])
    updated: int = Field(description="Members changed by an `update` upload.", examples=[0])
    duplicate_in_file: int = Field(
        description="Rows repeating an address of an earlier row.", examples=[1]
    )
    invalid: int = Field(description="Rows refused, each with its reason.", examples=[2])
    finished_at: datetime = Field(description="When the last row got its outcome (UTC).")
