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
        "admin_asked": False,
        "role": "a member",
        "inviter": None,
        "via": "registration_link",
        "new_email": "a***@example.net",
    }
    return base | overrides


def test_every_template_exists() -> None:
    assert {
        "welcome",
        "password_reset",
        "invitation",
        "invitation_reminder",
        "welcome_joined",
    } <= TEMPLATES


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


# What each template may read is fixed: a password is never among it.
ALLOWED = {
    "welcome": {"name", "email", "department", "url", "expires_at"},
    "password_reset": {"name", "email", "department", "url", "expires_at", "admin_asked"},
    "invitation": {"name", "email", "department", "url", "expires_at", "role", "inviter"},
    "invitation_reminder": {
        "name",
        "email",
        "department",
        "url",
        "expires_at",
        "role",
        "inviter",
    },
    "welcome_joined": {"name", "email", "department", "url"},
    "confirm_email": {"name", "email", "department", "url", "expires_at"},
    "sign_in_to_join": {"email", "department", "url", "via"},
    "change_email": {"name", "email", "url", "expires_at"},
    "link_address": {"name", "email", "url", "expires_at"},
    "email_changed": {"email", "url", "new_email"},
}


def test_every_template_has_its_allowed_variables() -> None:
    assert set(ALLOWED) == TEMPLATES


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_no_template_can_show_a_password(template: str) -> None:
    assert {"email", "url"} <= variables(template) <= ALLOWED[template]
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


INVITE_URL = "http://127.0.0.1:8102/invitations/inv-Tok_123"


@pytest.mark.parametrize("template", ["invitation", "invitation_reminder"])
def test_invitation_parts_name_department_role_inviter_link_and_expiry(template: str) -> None:
    email = render(
        template, context(url=INVITE_URL, role="an officer", inviter="Ada Admin", name="")
    )
    assert "Springfield EMS" in email.subject
    for part in (email.text, email.html):
        assert INVITE_URL in part
        assert "Springfield EMS" in part
        assert "an officer" in part
        assert "Ada Admin" in part
        assert "2026-12-02 21:05 UTC" in part
        assert "ana.lima@example.org" in part
    assert f'<a href="{INVITE_URL}">' in email.html


def test_invitation_without_an_inviter_reads_an_admin() -> None:
    email = render("invitation", context(url=INVITE_URL, inviter=None))
    assert "An admin invited you to join Springfield EMS on Prodigy as a member." in email.text
    assert "None" not in email.text


def test_reminder_says_it_is_a_reminder() -> None:
    first = render("invitation", context(url=INVITE_URL))
    again = render("invitation_reminder", context(url=INVITE_URL))
    assert first.subject == "You are invited to join Springfield EMS on Prodigy"
    assert again.subject.startswith("Reminder:")
    assert "Springfield EMS" in again.subject


def test_inviter_name_is_escaped_in_html() -> None:
    email = render("invitation", context(url=INVITE_URL, inviter="<b>Eve</b>"))
    assert "<b>Eve</b>" not in email.html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in email.html


def test_welcome_joined_says_you_joined_and_has_no_secret_link() -> None:
    email = render("welcome_joined", context(url="http://127.0.0.1:8102"))
    assert email.subject == "Welcome to Springfield EMS"
    for part in (email.text, email.html):
        assert "You joined" in part and "Springfield EMS" in part
        assert "Ana Lima" in part
        assert "token" not in part
        assert "works once" not in part


def test_reset_asked_by_an_admin_names_the_department() -> None:
    asked = render("password_reset", context(admin_asked=True))
    assert "An admin of Springfield EMS asked to reset" in asked.text
    assert "Springfield EMS" in asked.html
    public = render("password_reset", context(admin_asked=False))
    assert "Someone asked to reset the password" in public.text
    assert "Springfield EMS" not in public.text


CONFIRM_URL = "http://127.0.0.1:8100/confirm-email?token=conf-Tok_123"


def test_confirmation_names_the_department_the_address_the_link_and_what_ignoring_does() -> None:
    email = render("confirm_email", context(url=CONFIRM_URL))
    assert email.subject == "Confirm your email to join Springfield EMS"
    for part in (email.text, email.html):
        assert CONFIRM_URL in part or CONFIRM_URL.replace("&", "&amp;") in part
        assert "ana.lima@example.org" in part and "Springfield EMS" in part
        assert "2026-12-02 21:05 UTC" in part
        assert "password you chose" in part  # the link alone is not enough
        assert "ignore this email" in part
    assert f'<a href="{CONFIRM_URL}">' in email.html


@pytest.mark.parametrize(
    ("via", "action"),
    [("invitation", "accept the invitation"), ("registration_link", "join Springfield EMS")],
)
def test_sign_in_to_join_tells_the_owner_nothing_was_created_and_where_to_sign_in(
    via: str, action: str
) -> None:
    url = f"http://127.0.0.1:8100/{'invitations' if via == 'invitation' else 'join'}/t-1"
    email = render("sign_in_to_join", context(url=url, via=via, name=""))
    assert email.subject == "Someone tried to register with your address at Springfield EMS"
    for part in (email.text, email.html):
        assert url in part
        assert "ana.lima@example.org" in part
        assert "nothing was created" in " ".join(part.split())
        assert action in " ".join(part.split())
    assert f'<a href="{url}">' in email.html


def test_the_new_login_email_link_goes_to_the_new_address_with_its_expiry() -> None:
    email = render("change_email", context())
    for part in (email.text, email.html):
        assert URL in part or URL.replace("&", "&amp;") in part
        assert "ana.lima@example.org" in part
        assert "2026-12-02 21:05 UTC" in part


def test_the_old_address_is_told_of_the_change_with_the_new_one_masked() -> None:
    email = render("email_changed", context())
    assert "login email" in email.subject.lower()
    for part in (email.text, email.html):
        assert "ana.lima@example.org" in part
        assert "a***@example.net" in part
