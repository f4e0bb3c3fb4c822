"""Notifications' domain errors and the problem each is answered with (``PROBLEMS``)."""

from __future__ import annotations

from prodigy_users.runtime.errors import SHARED_PROBLEMS, DomainError, InvalidInput, ProblemType


class NotADepartmentAdmin(DomainError):
    """The caller does not administer the department (as notifications has heard it)."""

    default_detail = "Only an admin of this department may do this."


class InvalidCursor(InvalidInput):
    """The cursor was not issued by the email log."""

    def __init__(self, message: str) -> None:
        super().__init__(errors=[{"field": "cursor", "message": message}])


class UnknownStatus(InvalidInput):
    """A ``status`` filter names no state an email can be in."""

    def __init__(self, message: str) -> None:
        super().__init__(errors=[{"field": "status", "message": message}])


PROBLEMS: dict[type[DomainError], ProblemType] = {
    NotADepartmentAdmin: ProblemType(403, "forbidden", "Forbidden"),
    # Answered like every request whose fields are wrong.
    InvalidCursor: SHARED_PROBLEMS[InvalidInput],
    UnknownStatus: SHARED_PROBLEMS[InvalidInput],
}
