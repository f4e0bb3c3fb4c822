"""Reporting's domain errors and the problem each is answered with (``PROBLEMS``)."""

from __future__ import annotations

from prodigy_users.runtime.errors import (
    SHARED_PROBLEMS,
    DomainError,
    FieldErrors,
    InvalidInput,
    ProblemType,
)


class NotAReportViewer(DomainError):
    """The caller is no admin or officer of the department (as reporting has heard it)."""

    default_detail = "Only admins and officers of this department may see its reports."


class InvalidView(InvalidInput):
    """Query parameters that do not describe a view of the users table; ``errors`` names
    each bad one."""

    errors: FieldErrors

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__(errors=errors)


class InvalidActivityFilter(InvalidInput):
    """Query parameters that do not describe a view of the activity log; ``errors``
    names each bad one."""

    errors: FieldErrors

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__(errors=errors)


class NotAnActivityViewer(DomainError):
    """The caller is no admin of the department (as reporting has heard it)."""

    default_detail = "Only admins of this department may see its activity."


class InvalidCursor(InvalidInput):
    """The cursor was not issued by us, or not for this view of the users table."""

    def __init__(self, message: str) -> None:
        super().__init__(errors=[{"field": "cursor", "message": message}])


class NotAMember(DomainError):
    """The person is not (or no longer) a member of the department."""

    default_detail = "This person is not a member here."


class UnknownCertificate(DomainError):
    """No such certificate on this person's transcript in this department."""

    default_detail = "This person has no such certificate in this department."


# The same problem for a person's own certificate, said to them.
OWN_UNKNOWN_CERTIFICATE = "You have no such certificate."


class RevokedCertificate(DomainError):
    """The certificate was revoked; its completion stays on the transcript, marked."""

    default_detail = "This certificate was revoked; the transcript shows when and why."


class NoCertificates(DomainError):
    """The person has no valid certificate to print."""

    default_detail = "This person has no valid certificate in this department."


PROBLEMS: dict[type[DomainError], ProblemType] = {
    NotAReportViewer: ProblemType(403, "forbidden", "Forbidden"),
    # Answered like every request whose fields are wrong.
    InvalidView: SHARED_PROBLEMS[InvalidInput],
    InvalidActivityFilter: SHARED_PROBLEMS[InvalidInput],
    InvalidCursor: SHARED_PROBLEMS[InvalidInput],
    # The same answer as the users table's for someone who may not read it.
    NotAnActivityViewer: ProblemType(403, "forbidden", "Forbidden"),
    NotAMember: ProblemType(404, "not-found", "Not found"),
    UnknownCertificate: ProblemType(404, "certificate-not-found", "Unknown certificate"),
    RevokedCertificate: ProblemType(410, "certificate-revoked", "Certificate revoked"),
    NoCertificates: ProblemType(404, "no-certificates", "No certificates"),
}
