"""Identity's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prodigy_users.identity.domain import (
    CONFIRM_EMAIL,
    MAX_CONFIRMATIONS_PER_WINDOW,
    MAX_RESETS_PER_WINDOW,
    TokenState,
    confirmation_email_allowed,
    new_token,
    normalise_email,
    reset_allowed,
    token_hash,
    token_refusal,
)
from prodigy_users.runtime.passwords import password_problems

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_emails_are_unique_case_insensitively_and_trimmed() -> None:
    assert normalise_email("  Ana.Lima@Example.ORG ") == "ana.lima@example.org"


def test_tokens_have_at_least_128_bits_and_are_stored_hashed() -> None:
    token = new_token()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert new_token() != token
    assert token_hash(token) != token
    assert token_hash(token) == token_hash(token)
    assert len(token_hash(token)) == 64


def test_token_refusals() -> None:
    assert token_refusal(None, NOW) == "invalid"
    assert token_refusal(TokenState(NOW + timedelta(hours=1), None), NOW) is None
    assert token_refusal(TokenState(NOW - timedelta(seconds=1), None), NOW) == "expired"
    assert token_refusal(TokenState(NOW, None), NOW) == "expired"
    assert token_refusal(TokenState(NOW + timedelta(hours=1), NOW), NOW) == "used"


def test_a_token_works_only_for_what_it_was_issued_for() -> None:
    later = NOW + timedelta(hours=1)
    confirm = frozenset({CONFIRM_EMAIL})
    for purpose in ("welcome", "reset", "operator"):
        assert token_refusal(TokenState(later, None, purpose), NOW) is None
        assert token_refusal(TokenState(later, None, purpose), NOW, confirm) == "invalid"
    assert token_refusal(TokenState(later, None, CONFIRM_EMAIL), NOW, confirm) is None
    assert token_refusal(TokenState(later, None, CONFIRM_EMAIL), NOW) == "invalid"
    assert token_refusal(TokenState(later, NOW, CONFIRM_EMAIL), NOW, confirm) == "used"


def test_confirmation_emails_are_capped_per_window() -> None:
    assert confirmation_email_allowed(0)
    assert confirmation_email_allowed(MAX_CONFIRMATIONS_PER_WINDOW - 1)
    assert not confirmation_email_allowed(MAX_CONFIRMATIONS_PER_WINDOW)


def test_password_policy() -> None:
    assert password_problems("correct horse battery") == []
    assert "must be at least 10 characters long" in password_problems("short")
    assert "is too common" in password_problems("Password123")
    assert "must not be your email address" in password_problems(
        "ana@example.org", email="Ana@Example.org"
    )
    assert "is too repetitive" in password_problems("aaaaaaaaaaaa")
    assert "must be at most 128 characters long" in password_problems("x1y2z3" * 30)


def test_at_most_three_reset_emails_per_window() -> None:
    assert MAX_RESETS_PER_WINDOW == 3
    assert [reset_allowed(n) for n in range(5)] == [True, True, True, False, False]
