"""What can go wrong in membership, and the problem each is answered with.

Use cases raise these (named for what went wrong, no HTTP in them); ``PROBLEMS``
is the one table that turns them into problem details (``runtime.problems``), for
HTTP answers and for the outcome of an operation that failed after its 202.
"""

from __future__ import annotations

import uuid

from prodigy_users.runtime.errors import DomainError, ProblemTable, ProblemType

# -- departments and who may act ----------------------------------------------------------


class DepartmentNotFound(DomainError):
    """The department does not exist."""

    default_detail = "No such department."


class NotAdministrator(DomainError):
    """The caller does not administer the department."""

    default_detail = "You do not administer this department."


class OperationNotFound(DomainError):
    """No such operation, or not the caller's."""

    default_detail = "No such operation."


# -- members ----------------------------------------------------------------------------


class MemberNotFound(DomainError):
    """Not (or no longer) a member of the department."""

    default_detail = "No such member in this department."


class LastAdmin(DomainError):
    """The change would leave the department without an admin."""

    default_detail = "This is the department's only admin; make someone else admin first."


class EmployeeIdTaken(DomainError):
    """Another person of the department has this employee ID."""

    default_detail = "Another person in this department has this employee ID."

    def __init__(self) -> None:
        super().__init__(
            errors=[{"field": "employee_id", "message": "already used in this department"}]
        )


class AccountExists(DomainError):
    """The email already belongs to an account (identity said so)."""

    default_detail = (
        "An account with this email already exists; invite them instead, and they "
        "join by signing in."
    )


ACCOUNT_EXISTS_REGISTERING = (
    "An account with this email already exists: sign in, then accept with that account."
)


class AccountNotReady(DomainError):
    """A signed-in account membership has not heard of yet (identity's event about it is
    on its way): nothing is decided with a stand-in address; the person tries again."""

    default_detail = "Your account is still being set up; try again in a moment."

    def __init__(self) -> None:
        super().__init__(retry_after=2)


class RegistrationLapsed(DomainError):
    """A registration whose address was not confirmed: the link was not used in time, or a
    newer request for the address replaced it. Nobody joined."""

    default_detail = (
        "The email address was not confirmed in time, so nobody joined; register again."
    )


REGISTRATION_SUPERSEDED = (
    "A newer registration or an admin's request for this email address replaced this "
    "registration before it was confirmed."
)


class AlreadyMember(DomainError):
    """The person is a current member of the department (``detail`` says who, to whom it
    is said); ``account_id``, when given, names their record for the admin."""

    def __init__(self, detail: str, *, account_id: uuid.UUID | None = None) -> None:
        super().__init__(
            detail, extra={"account_id": str(account_id)} if account_id is not None else None
        )


# -- invitations and the registration link -------------------------------------------------


class InvitationUnusable(DomainError):
    """An invitation link that cannot be used (one subclass per reason)."""


class InvitationUsed(InvitationUnusable):
    """Accepted already."""

    default_detail = "This invitation has already been used."


class InvitationRevoked(InvitationUnusable):
    """Withdrawn by the department."""

    default_detail = "This invitation was withdrawn by the department."


class InvitationExpired(InvitationUnusable):
    """Past its expiry."""

    default_detail = "This invitation has expired; ask the department for a new one."


class InvitationInvalid(InvitationUnusable):
    """No invitation has this token."""

    default_detail = "This invitation link is not valid."


class InvitationNotFound(DomainError):
    """No such invitation in the department."""

    default_detail = "No such invitation."


class InvitationNotPending(DomainError):
    """An admin acted on an invitation that is no longer pending."""

    def __init__(self, status: str) -> None:
        super().__init__(f"This invitation is {status}.")


class ReminderTooSoon(DomainError):
    """The invitation was sent less than the reminder interval ago."""

    default_detail = "This invitation was sent less than an hour ago; try again later."


class EmailDomainNotAllowed(DomainError):
    """The registration link accepts only some email domains."""

    default_detail = "This department only accepts registrations from certain email domains."

    def __init__(self) -> None:
        super().__init__(
            errors=[{"field": "email", "message": "domain not allowed for this department"}]
        )


class RegistrationLinkExpired(DomainError):
    """The registration link is past its expiry."""

    default_detail = "This registration link has expired."


class RegistrationLinkInvalid(DomainError):
    """No enabled registration link has this token."""

    default_detail = (
        "This registration link is not valid (it may have been replaced or switched off)."
    )


# -- groups -------------------------------------------------------------------------------


class GroupNotFound(DomainError):
    """No such group in the department."""

    default_detail = "No such group in this department."


class GroupNameTaken(DomainError):
    """Another group of the department has this name."""

    default_detail = "This department already has a group with that name."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "name", "message": "already used in this department"}])


# -- bulk imports ---------------------------------------------------------------------------


class FileRefused(DomainError):
    """An uploaded file that cannot be imported (``errors`` names the ``file`` field)."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(detail, errors=[{"field": "file", "message": message}])


class FileTooLarge(FileRefused):
    """Over the size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The file is larger than {limit / (1024 * 1024):g} MB; split it into smaller "
            "files.",
            f"at most {limit:,} bytes",
        )


class NotMultipart(FileRefused):
    """The upload is not a multipart form."""

    def __init__(self) -> None:
        super().__init__(
            "Send the file as multipart/form-data, in the field `file`.",
            "multipart/form-data with a `file` field",
        )


class UnsupportedFileType(FileRefused):
    """Not a CSV or XLSX file."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "must be CSV or XLSX")


class TooManyRows(FileRefused):
    """More rows than an upload may have."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The file has more than {limit:,} rows below its header; split it into files "
            f"of at most {limit:,} rows.",
            f"at most {limit:,} rows",
        )


class EmptyFile(FileRefused):
    """Nothing in the file."""

    def __init__(self) -> None:
        super().__init__("The file is empty.", "the file is empty")


class NoRows(FileRefused):
    """A header and nothing below it."""

    def __init__(self) -> None:
        super().__init__(
            "The file has a header row but no rows below it.", "no rows below the header"
        )


class MalformedCsv(FileRefused):
    """A CSV file that cannot be read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "not a readable CSV file")


class DamagedXlsx(FileRefused):
    """An XLSX file that cannot be opened or read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "not a readable XLSX file")


class UnsafeFile(FileRefused):
    """A file built to cost more than it is worth to read: parts that expand too far, too
    many of them, too many shared strings, XML entities (``detail`` says which)."""


class FileTooDemanding(FileRefused):
    """Reading the file needed more memory or time than an upload may use."""


class NoEmailColumn(FileRefused):
    """The header row names no email column."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "no email column in the header row")


class NoFile(DomainError):
    """The upload has no ``file`` field."""

    default_detail = "The request has no file: send it in the multipart field `file`."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "file", "message": "a file is required"}])


class ImportNotFound(DomainError):
    """No such import in the department."""

    default_detail = "No such import in this department."


PROBLEMS: ProblemTable = {
    DepartmentNotFound: ProblemType(404, "department-not-found", "Unknown department"),
    NotAdministrator: ProblemType(403, "forbidden", "Forbidden"),
    OperationNotFound: ProblemType(404, "operation-not-found", "Unknown operation"),
    MemberNotFound: ProblemType(404, "member-not-found", "Unknown member"),
    LastAdmin: ProblemType(409, "last-admin", "Last admin"),
    EmployeeIdTaken: ProblemType(409, "employee-id-taken", "Employee ID in use"),
    AccountExists: ProblemType(409, "account-exists", "Account already exists"),
    AlreadyMember: ProblemType(409, "already-member", "Already a member"),
    AccountNotReady: ProblemType(409, "account-not-ready", "Account not ready"),
    RegistrationLapsed: ProblemType(410, "registration-lapsed", "Registration not confirmed"),
    InvitationUsed: ProblemType(400, "invitation-used", "Invitation cannot be used"),
    InvitationRevoked: ProblemType(400, "invitation-revoked", "Invitation cannot be used"),
    InvitationExpired: ProblemType(400, "invitation-expired", "Invitation cannot be used"),
    InvitationInvalid: ProblemType(400, "invitation-invalid", "Invitation cannot be used"),
    InvitationNotFound: ProblemType(404, "invitation-not-found", "Unknown invitation"),
    InvitationNotPending: ProblemType(409, "invitation-not-pending", "Invitation not pending"),
    ReminderTooSoon: ProblemType(429, "reminder-too-soon", "Reminder sent recently"),
    EmailDomainNotAllowed: ProblemType(403, "email-domain-not-allowed", "Email domain not allowed"),
    RegistrationLinkExpired: ProblemType(400, "registration-link-expired", "Link expired"),
    RegistrationLinkInvalid: ProblemType(400, "registration-link-invalid", "Link not valid"),
    GroupNotFound: ProblemType(404, "group-not-found", "Unknown group"),
    GroupNameTaken: ProblemType(409, "group-name-taken", "Group name in use"),
    FileTooLarge: ProblemType(413, "file-too-large", "File too large"),
    NotMultipart: ProblemType(415, "unsupported-media-type", "Unsupported media type"),
    UnsupportedFileType: ProblemType(415, "unsupported-file-type", "Unsupported file type"),
    TooManyRows: ProblemType(422, "too-many-rows", "Too many rows"),
    EmptyFile: ProblemType(422, "empty-file", "Empty file"),
    NoRows: ProblemType(422, "no-rows", "No rows"),
    MalformedCsv: ProblemType(422, "malformed-file", "Malformed CSV"),
    DamagedXlsx: ProblemType(422, "malformed-file", "Damaged XLSX file"),
    NoEmailColumn: ProblemType(422, "no-email-column", "No email column"),
    UnsafeFile: ProblemType(422, "unsafe-file", "Unsafe file"),
    FileTooDemanding: ProblemType(422, "file-too-demanding", "File too demanding to read"),
    NoFile: ProblemType(422, "validation", "Invalid request"),
    ImportNotFound: ProblemType(404, "import-not-found", "Unknown import"),
}
