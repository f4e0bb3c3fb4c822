"""The console's rules without I/O: safe redirects, CSRF tokens, the users view's
URLs, how a service's problem becomes form errors, and that every state-changing
route checks CSRF."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.routing import APIRoute

from prodigy_users.console import app as console_app
from prodigy_users.console.clients import FieldError, Problem
from prodigy_users.console.csrf import CsrfSigner, check_csrf
from prodigy_users.console.forms import errors_from, field_message, sentence
from prodigy_users.console.session import safe_next, sign_in_url
from prodigy_users.console.users_view import UsersView


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/departments/x/users?role=admin", "/departments/x/users?role=admin"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        ("relative/path", "/"),
    ],
)
def test_next_is_only_ever_a_local_path(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_sign_in_url_carries_a_safe_next_only() -> None:
    assert (
        sign_in_url("/departments/1/users?q=a b")
        == "/sign-in?next=%2Fdepartments%2F1%2Fusers%3Fq%3Da+b"
    )
    assert sign_in_url("//evil.example") == "/sign-in"


def test_csrf_tokens_are_bound_to_the_browser_and_expire() -> None:
    signer = CsrfSigner(b"k" * 32, max_age_s=60)
    token = signer.token("browser-a")
    assert signer.valid(token, "browser-a")
    assert not signer.valid(token, "browser-b")
    assert not signer.valid(None, "browser-a")
    assert not signer.valid(token, None)
    assert not signer.valid(token + "x", "browser-a")
    assert not CsrfSigner(b"j" * 32, max_age_s=60).valid(token, "browser-a")
    old = CsrfSigner(b"k" * 32, max_age_s=1)
    stale = old.token("browser-a")
    time.sleep(2.1)
    assert not old.valid(stale, "browser-a")


def test_every_state_changing_route_checks_csrf() -> None:
    app = console_app.build_app()
    checked = 0
    for router in console_app.PAGES:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if (route.methods or set()) - {"GET", "HEAD"}:
                calls = [d.dependency for d in router.dependencies]
                assert check_csrf in calls, route.path
                checked += 1
    assert checked >= 8
    assert app is not None


def test_the_view_gives_reporting_the_same_rows_as_the_export() -> None:
    view = UsersView.parse(role="officer", status="", q="  ana   lima ", sort="-email", limit="10")
    assert view.report_params() == [
        ("role", "officer"),
        ("q", "ana lima"),
        ("sort", "-email"),
        ("limit", "10"),
    ]
    assert view.export_params("xlsx") == [
        ("role", "officer"),
        ("q", "ana lima"),
        ("sort", "-email"),
        ("format", "xlsx"),
    ]


def test_sorting_a_column_toggles_and_starts_from_the_first_page() -> None:
    view = UsersView.parse(sort="name", cursor="abc", page="3")
    assert view.page == 3
    assert view.sort_query("name") == "sort=-name"
    assert view.sort_query("email") == "sort=email"
    assert view.aria_sort("name") == "ascending"
    assert view.aria_sort("email") == "none"
    assert UsersView.parse(sort="-name").aria_sort("name") == "descending"
    assert view.next_query("xyz") == "sort=name&cursor=xyz&page=4"
    assert view.first_query() == "sort=name"


def test_a_page_number_without_a_cursor_is_the_first_page() -> None:
    assert UsersView.parse(page="7").page == 1
    assert UsersView.parse(limit="9999").limit == 50


def test_problems_become_sentences_next_to_their_fields() -> None:
    problem = Problem(
        422,
        "validation",
        "Invalid request",
        "Some fields are missing or invalid; see `errors`.",
        errors=(
            FieldError("email", "value is not a valid email address: no @"),
            FieldError("name", "String should have at least 1 character"),
            FieldError("(body)", "something about the whole form"),
        ),
    )
    errors = errors_from(problem, {"email": "Email address", "name": "Full name"})
    assert errors.fields == {
        "email": "Enter an email address in the correct format, like name@example.org.",
        "name": "Enter full name.",
    }
    assert [i.field for i in errors.summary] == ["email", "name", None]
    assert errors.summary[2].message == "Something about the whole form."


def test_a_problem_without_fields_is_said_about_the_action() -> None:
    problem = Problem(429, "reminder-too-soon", "Reminder sent recently", "Try again later")
    errors = errors_from(problem, {"email": "Email"})
    assert errors.fields == {}
    assert [i.message for i in errors.summary] == ["Try again later."]


def test_sentences() -> None:
    assert sentence("  password is   too short ") == "Password is too short."
    assert sentence("Done!") == "Done!"
    assert field_message("Field required", "Email address") == "Enter email address."


def test_a_non_json_error_answer_is_still_a_problem() -> None:
    answer = httpx.Response(
        502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}
    )
    problem = Problem.of(answer)
    assert problem.status == 502 and problem.slug == "http-502"
    assert "<html>" not in problem.detail


def test_a_problem_document_is_read_whole() -> None:
    answer = httpx.Response(
        429,
        json={
            "type": "https://prodigy-users.dev/problems/reminder-too-soon",
            "title": "Reminder sent recently",
            "status": 429,
            "detail": "Try later.",
            "retry_at": "2026-01-01T10:00:00Z",
        },
        headers={"content-type": "application/problem+json", "retry-after": "120"},
    )
    problem = Problem.of(answer)
    assert (problem.slug, problem.retry_after, problem.extra) == (
        "reminder-too-soon",
        120,
        {"retry_at": "2026-01-01T10:00:00Z"},
    )


def test_ci_runs_exactly_the_readmes_test_command_which_installs_chromium() -> None:
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    ci = (repo / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in (repo / "README.md").read_text()
    assert ci.startswith("(command -v chromium >/dev/null || (apt-get update")
    assert "playwright install" not in ci
