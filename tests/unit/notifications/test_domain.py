"""Notifications' rules: templates per purpose, links, retries and backoff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from prodigy_users.notifications.domain import (
    MAX_ERROR_LENGTH,
    LogCursor,
    RetryPolicy,
    decode_cursor,
    department_hold,
    department_label,
    encode_cursor,
    event_key,
    invitation_template,
    invitation_url,
    is_permanent_smtp_code,
    last_roles,
    lease_left_for_send,
    link_expired,
    link_kind,
    parse_statuses,
    role_label,
    set_password_url,
    short_error,
    template_for,
)
from prodigy_users.notifications.errors import InvalidCursor, UnknownStatus
from prodigy_users.notifications.settings import Settings


def test_each_purpose_has_its_template() -> None:
    assert template_for("welcome") == "welcome"
    assert template_for("reset") == "password_reset"


def test_set_password_url_carries_the_token_encoded() -> None:
    url = set_password_url("http://127.0.0.1:8101/", "a+b/c=d")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8101", "/set-password")
    assert parse_qs(parts.query) == {"token": ["a+b/c=d"]}


def test_urlsafe_tokens_stay_readable_in_the_link() -> None:
    assert set_password_url("https://id.example", "abc-_123") == (
        "https://id.example/set-password?token=abc-_123"
    )


def test_unknown_department_is_named_prodigy() -> None:
    assert department_label(None) == "Prodigy"
    assert department_label("") == "Prodigy"
    assert department_label("Springfield EMS") == "Springfield EMS"


def test_events_are_keyed_by_department_else_recipient() -> None:
    dept = uuid.uuid4()
    assert event_key(dept, "a@example.org") == str(dept)
    assert event_key(None, "Ana@Example.org") == "ana@example.org"


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=8, base_s=1.0, max_s=60.0)
    assert [d.total_seconds() for d in policy.schedule()] == [1, 2, 4, 8, 16, 32, 60]


def test_default_policy_retries_four_times_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=1.0, max_s=60.0)
    assert [policy.after_failure(n) for n in range(1, 5)] == [
        timedelta(seconds=1),
        timedelta(seconds=2),
        timedelta(seconds=4),
        timedelta(seconds=8),
    ]
    assert policy.after_failure(5) is None
    assert policy.after_failure(6) is None


def test_a_permanent_error_gives_up_at_once() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=1.0, max_s=60.0)
    assert policy.after_failure(1, permanent=True) is None


def test_huge_attempt_counts_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=10_000, base_s=0.5, max_s=30.0)
    assert policy.delay(5000) == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("code", "permanent"), [(550, True), (554, True), (421, False), (451, False)]
)
def test_only_5xx_smtp_replies_are_permanent(code: int, permanent: bool) -> None:
    assert is_permanent_smtp_code(code) is permanent


def test_expired_links_are_not_worth_sending() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert link_expired(now - timedelta(seconds=1), now)
    assert not link_expired(now + timedelta(minutes=5), now)
    assert not link_expired(None, now)


def test_long_errors_are_shortened() -> None:
    assert short_error("boom") == "boom"
    assert len(short_error("x" * 5000)) == MAX_ERROR_LENGTH


def test_invitation_url_puts_the_token_in_the_path() -> None:
    assert invitation_url("http://127.0.0.1:8102/", "abc-_123") == (
        "http://127.0.0.1:8102/invitations/abc-_123"
    )
    assert invitation_url("https://app.example", "a/b?c") == (
        "https://app.example/invitations/a%2Fb%3Fc"
    )


def test_which_templates_carry_which_link() -> None:
    assert invitation_template(reminder=False) == "invitation"
    assert invitation_template(reminder=True) == "invitation_reminder"
    assert link_kind("welcome") == link_kind("password_reset") == "set_password"
    assert link_kind("invitation") == link_kind("invitation_reminder") == "invitation"
    assert link_kind("welcome_joined") is None


def test_roles_read_naturally() -> None:
    assert [role_label(r) for r in ("admin", "officer", "member")] == [
        "an admin",
        "an officer",
        "a member",
    ]


def test_an_email_waits_for_an_unknown_department_name_only() -> None:
    wait = timedelta(seconds=10)
    assert department_hold(True, wait) is None
    assert department_hold(False, wait) == wait
    assert department_hold(False, timedelta(0)) is None


def test_the_default_retries_ride_out_a_relay_outage_of_about_17_minutes() -> None:
    settings = Settings()
    policy = RetryPolicy(
        settings.send_max_attempts, settings.send_backoff_base_s, settings.send_backoff_max_s
    )
    waits = [d.total_seconds() for d in policy.schedule()]
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert 16 * 60 < sum(waits) < 18 * 60
    assert policy.after_failure(settings.send_max_attempts) is None


def test_log_cursors_round_trip_and_refuse_anything_else() -> None:
    cursor = LogCursor(datetime(2026, 11, 25, 21, 0, 1, 5, tzinfo=UTC), uuid.uuid4())
    encoded = encode_cursor(cursor)
    assert "=" not in encoded and "/" not in encoded and "+" not in encoded
    assert decode_cursor(encoded) == cursor
    for bad in ("", "not-a-cursor", encoded[:-3], "W10", "WyJ4IiwgInkiXQ"):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_statuses_come_repeated_or_comma_separated_and_unknown_ones_are_named() -> None:
    assert parse_statuses([]) == ()
    assert parse_statuses(["retrying,failed", " Sent ", "failed", ""]) == (
        "retrying",
        "failed",
        "sent",
    )
    with pytest.raises(UnknownStatus) as caught:
        parse_statuses(["sent,bounced"])
    [error] = caught.value.errors or []
    assert error["field"] == "status" and "'bounced'" in error["message"]


def test_an_email_is_sent_only_with_its_lease_well_ahead_of_the_attempt() -> None:
    timeout, lease = timedelta(seconds=30), timedelta(seconds=120)
    assert lease_left_for_send(timedelta(seconds=119), send_timeout=timeout, lease=lease)
    assert not lease_left_for_send(timedelta(seconds=45), send_timeout=timeout, lease=lease)
    # A lease configured shorter than the timeout: half of it must be left.
    short = timedelta(seconds=10)
    assert lease_left_for_send(timedelta(seconds=9), send_timeout=timeout, lease=short)
    assert not lease_left_for_send(timedelta(seconds=4), send_timeout=timeout, lease=short)


def test_the_last_role_change_of_each_person_wins() -> None:
    dept, ada, nia = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    changes = [((dept, ada), "admin"), ((dept, nia), "member"), ((dept, ada), None)]
    changes.append(((dept, nia), "officer"))
    assert last_roles(changes) == {(dept, ada): None, (dept, nia): "officer"}
    assert last_roles([]) == {}


def test_a_new_login_email_shows_masked_to_the_old_address() -> None:
    from prodigy_users.notifications.domain import masked_email

    assert masked_email("ana.lima@example.net") == "a***@example.net"
    assert masked_email("not-an-address") == "***"


def test_the_new_login_email_link_opens_the_consoles_page() -> None:
    from prodigy_users.notifications.domain import change_email_url, link_kind

    assert link_kind("change_email") == "change_email"
    assert link_kind("email_changed") is None  # the notice carries no secret
    assert (
        change_email_url("https://app.example.org/", "t o/k")
        == "https://app.example.org/email-change?token=t+o%2Fk"
    )
