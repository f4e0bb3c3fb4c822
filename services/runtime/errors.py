"""Domain errors: what use cases raise when a rule says no, and how each becomes an answer.

A use case raises an error named for what went wrong (``LastAdmin``,
``InvitationUsed``), with a sentence for people and, where a field is at fault,
field messages. It knows nothing of HTTP. Each service lists its errors in one
table (``PROBLEMS`` in its ``errors.py``) that gives each a status, a problem type
and a title; ``runtime.problems`` renders them as RFC 9457 problem details, so no
route catches them itself. The errors every service shares (a missing or bad
token, a weak password) and their rows live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

FieldErrors = list[dict[str, str]]


class DomainError(Exception):
    """A rule refused: ``detail`` says why, ``errors`` which fields (``[{field, message}]``).

    Subclasses set ``default_detail`` (the usual sentence) and may be raised with a
    more precise one. ``retry_after`` (seconds) tells a client when trying again can
    work; ``extra`` adds members to the problem document.
    """

    default_detail: ClassVar[str] = "The request cannot be carried out."

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: FieldErrors | None = None,
        retry_after: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)
        self.errors = errors
        self.retry_after = retry_after
        self.extra = dict(extra or {})

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as it is, whatever a subclass's ``__init__`` takes: the error of a
        # use case that ran in another process (an upload read in a child) comes back.
        return (_rebuilt, (type(self), self.__dict__.copy()))


def _rebuilt(cls: type[DomainError], state: dict[str, Any]) -> DomainError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("detail"))
    error.__dict__.update(state)
    return error


@dataclass(frozen=True)
class ProblemType:
    """How one domain error is answered: its HTTP status, type slug and title."""

    status: int
    slug: str
    title: str


ProblemTable = Mapping[type[DomainError], ProblemType]


# -- the errors every service shares ------------------------------------------------------


class Unauthenticated(DomainError):
    """No access token, or one that is invalid, expired or revoked."""

    default_detail = "This call needs `Authorization: Bearer <access token>`."


class WeakPassword(DomainError):
    """The chosen password breaks the password policy (``errors`` says how)."""

    default_detail = "Choose a stronger password."


class OperatorsOnly(DomainError):
    """Only platform operators may do this."""

    default_detail = "Only platform operators may do this."


class InvalidInput(DomainError):
    """Input the request's schema let through, refused by a rule (``errors`` names fields)."""

    default_detail = "Some fields are missing or invalid; see `errors`."


class TooManyAttempts(DomainError):
    """Too many attempts from this client, or at this account or link, for now
    (``runtime.throttle``); ``retry_after`` says when trying again can work."""

    default_detail = "Too many attempts. Wait a little, then try again."


class RequestTooLarge(DomainError):
    """The request's body is larger than the call accepts (``runtime.body_limit``)."""

    default_detail = "The request body is larger than this call accepts."


SHARED_PROBLEMS: dict[type[DomainError], ProblemType] = {
    Unauthenticated: ProblemType(401, "unauthorized", "Unauthorized"),
    WeakPassword: ProblemType(422, "weak-password", "Password too weak"),
    OperatorsOnly: ProblemType(403, "forbidden", "Forbidden"),
    InvalidInput: ProblemType(422, "validation", "Invalid request"),
    TooManyAttempts: ProblemType(429, "too-many-attempts", "Too many attempts"),
    RequestTooLarge: ProblemType(413, "request-too-large", "Request too large"),
}


def problem_type(error: DomainError, table: ProblemTable) -> ProblemType | None:
    """The row for ``error``: its own class's, else the nearest base class's."""
    for cls in type(error).mro():
        if issubclass(cls, DomainError) and cls in table:
            return table[cls]
    return None
