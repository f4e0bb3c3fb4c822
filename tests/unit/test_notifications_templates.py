"""The emails: both parts, the link, the login email, no password, escaped HTML."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jinja2 import UndefinedError

from prodigy_users.notifications.templates import TEMPLATES, format_utc, render, variables

URL = "http://127.0.0.1:8101/set-password?token=tok-123_abc"
EXPIRES = datetime(2026, 12, 2, 21, 5, tzinfo=UTC)


def context(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Ana Lima",
        "email": "ana.lima@example.org",
        "department": "Springfield EMS",
        "url": URL,
        "expires_at": EXPIRES,
    }
    return base | overrides


def test_both_templates_exist() -> None:
    assert {"welcome", "password_reset"} <= TEMPLATES


@pytest.mark.parametrize("template", ["welcome", "password_reset"])
def test_both_parts_carry_the_link_the_login_email_and_the_expiry(template: str) -> None:
    email = render(template, context())
    for part in (email.text, email.html):
        assert URL in part or URL.replace("&", "&amp;") in part
        assert "ana.lima@example.org" in part
        assert "2026-12-02 21:05 UTC" in part
        assert "Ana Lima" in part
    assert email.html.lstrip().lower().startswith("<!doctype html>")
    assert "<a href=" in email.html


def test_welcome_names_the_department() -> None:
    email = render("welcome", context())
    assert "Springfield EMS" in email.subject
    assert "Springfield EMS" in email.text
    assert "Springfield EMS" in email.html


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_no_template_can_show_a_password(template: str) -> None:
    # What a template may read is fixed: a password is never among it.
    allowed = {"name", "email", "department", "url", "expires_at"}
    assert {"name", "email", "url", "expires_at"} <= variables(template) <= allowed
    email = render(template, context())
    for part in (email.subject, email.text, email.html):
        assert "password:" not in part.lower()
        assert "your password is" not in part.lower()


def test_html_is_escaped_and_text_is_not() -> None:
    email = render("welcome", context(name="<script>alert(1)</script> & Co"))
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert "<script>alert(1)</script> & Co" in email.text


def test_subject_is_one_line_whatever_the_department_is_called() -> None:
    email = render("welcome", context(department="Evil\r\nBcc: x@example.org"))
    assert "\n" not in email.subject and "\r" not in email.subject


def test_missing_variables_are_an_error_not_a_hole() -> None:
    ctx = context()
    del ctx["url"]
    with pytest.raises(UndefinedError):
        render("welcome", ctx)


def test_unknown_template_is_refused() -> None:
    with pytest.raises(KeyError):
        render("nope", context())


def test_times_are_shown_in_utc() -> None:
    assert format_utc(datetime(2026, 1, 1, 12, 0)) == "2026-01-01 12:00 UTC"
