"""Identity's domain errors: each has its row, and clients get the answers they always got."""

from __future__ import annotations

import pytest

from prodigy_users.identity.errors import (
    PROBLEMS,
    AccountNotFound,
    InvalidCredentials,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
)
from prodigy_users.runtime.errors import DomainError, OperatorsOnly
from prodigy_users.runtime.problems import PROBLEM_BASE, problem_of


@pytest.mark.parametrize(
    ("error", "status", "slug", "title", "detail"),
    [
        (
            InvalidCredentials(),
            401,
            "invalid-credentials",
            "Invalid credentials",
            "Email or password is wrong.",
        ),
        (AccountNotFound(), 404, "not-found", "No such account", "There is no such account."),
        (
            AccountNotFound("The token's account does not exist."),
            404,
            "not-found",
            "No such account",
            "The token's account does not exist.",
        ),
        (LinkInvalid(), 400, "token-invalid", "Link cannot be used", "This link is not valid."),
        (
            LinkUsed(),
            400,
            "token-used",
            "Link cannot be used",
            "This link has already been used.",
        ),
        (
            LinkExpired(),
            400,
            "token-expired",
            "Link cannot be used",
            "This link has expired; ask for a new one.",
        ),
        (OperatorsOnly(), 403, "forbidden", "Forbidden", "Only platform operators may do this."),
    ],
)
def test_each_error_is_answered_as_before(
    error: DomainError, status: int, slug: str, title: str, detail: str
) -> None:
    problem = problem_of(error, PROBLEMS)
    assert problem.body() == {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    # A wrong password is no bearer-token problem: no challenge header, as before.
    assert problem.headers is None
