"""Identity's domain errors and the problem each is answered with (``PROBLEMS``).

Identity also raises the shared ``WeakPassword`` (a new password breaks the policy)
and ``OperatorsOnly``; their rows are the runtime's.
"""

from __future__ import annotations

from prodigy_users.runtime.errors import DomainError, ProblemType


class InvalidCredentials(DomainError):
    """No account has this email and password (which of the two is wrong is not said)."""

    default_detail = "Email or password is wrong."


class AccountNotFound(DomainError):
    """There is no account with this id."""

    default_detail = "There is no such account."


class LinkInvalid(DomainError):
    """A set-password or reset token that was never issued."""

    default_detail = "This link is not valid."


class LinkUsed(DomainError):
    """A set-password or reset token that has been used already."""

    default_detail = "This link has already been used."


class LinkExpired(DomainError):
    """A set-password or reset token past its expiry."""

    default_detail = "This link has expired; ask for a new one."


PROBLEMS: dict[type[DomainError], ProblemType] = {
    InvalidCredentials: ProblemType(401, "invalid-credentials", "Invalid credentials"),
    AccountNotFound: ProblemType(404, "not-found", "No such account"),
    LinkInvalid: ProblemType(400, "token-invalid", "Link cannot be used"),
    LinkUsed: ProblemType(400, "token-used", "Link cannot be used"),
    LinkExpired: ProblemType(400, "token-expired", "Link cannot be used"),
}
