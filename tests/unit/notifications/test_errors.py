"""Notifications' domain errors: each has its row, and clients get the answers they always got."""

from __future__ import annotations

import pytest

from prodigy_users.notifications.errors import (
    PROBLEMS,
    InvalidCursor,
    NotADepartmentAdmin,
    UnknownStatus,
)
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import PROBLEM_BASE, problem_of


def test_only_admins_read_the_log_as_before() -> None:
    problem = problem_of(NotADepartmentAdmin(), PROBLEMS)
    assert problem.body() == {
        "type": PROBLEM_BASE + "forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "Only an admin of this department may do this.",
    }
    assert problem.headers is None


@pytest.mark.parametrize(
    ("error", "field", "message"),
    [
        (InvalidCursor("the cursor is malformed"), "cursor", "the cursor is malformed"),
        (UnknownStatus("unknown status 'x'"), "status", "unknown status 'x'"),
    ],
)
def test_bad_filters_are_invalid_requests_naming_the_field(
    error: DomainError, field: str, message: str
) -> None:
    problem = problem_of(error, PROBLEMS)
    assert problem.body() == {
        "type": PROBLEM_BASE + "validation",
        "title": "Invalid request",
        "status": 422,
        "detail": "Some fields are missing or invalid; see `errors`.",
        "errors": [{"field": field, "message": message}],
    }
    assert problem.headers is None
