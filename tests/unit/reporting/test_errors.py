"""Reporting's domain errors: each has its row, and clients get the answers they always got."""

from __future__ import annotations

import pytest

from prodigy_users.reporting.errors import (
    PROBLEMS,
    InvalidCursor,
    InvalidView,
    NoCertificates,
    NotAMember,
    NotAReportViewer,
    RevokedCertificate,
    UnknownCertificate,
)
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import PROBLEM_BASE, problem_of

INVALID = "Some fields are missing or invalid; see `errors`."


@pytest.mark.parametrize(
    ("error", "status", "slug", "title", "detail"),
    [
        (
            NotAReportViewer(),
            403,
            "forbidden",
            "Forbidden",
            "Only admins and officers of this department may see its reports.",
        ),
        (NotAMember(), 404, "not-found", "Not found", "This person is not a member here."),
        (
            UnknownCertificate(),
            404,
            "certificate-not-found",
            "Unknown certificate",
            "This person has no such certificate in this department.",
        ),
        (
            RevokedCertificate(),
            410,
            "certificate-revoked",
            "Certificate revoked",
            "This certificate was revoked; the transcript shows when and why.",
        ),
        (
            NoCertificates(),
            404,
            "no-certificates",
            "No certificates",
            "This person has no valid certificate in this department.",
        ),
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
    assert problem.headers is None


def test_bad_views_and_cursors_are_invalid_requests_naming_the_field() -> None:
    bad_view = problem_of(InvalidView([{"field": "role", "message": "unknown"}]), PROBLEMS)
    bad_cursor = problem_of(InvalidCursor("the cursor is malformed"), PROBLEMS)
    assert bad_view.body() == {
        "type": PROBLEM_BASE + "validation",
        "title": "Invalid request",
        "status": 422,
        "detail": INVALID,
        "errors": [{"field": "role", "message": "unknown"}],
    }
    assert bad_cursor.body() == {
        "type": PROBLEM_BASE + "validation",
        "title": "Invalid request",
        "status": 422,
        "detail": INVALID,
        "errors": [{"field": "cursor", "message": "the cursor is malformed"}],
    }
    assert bad_view.headers is None and bad_cursor.headers is None
