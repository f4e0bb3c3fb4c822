"""The rules of a person's name and login email changes (``identity.domain``)."""

from __future__ import annotations

from prodigy_users.identity.domain import (
    CHANGE_EMAIL,
    CONFIRM_EMAIL,
    SET_PASSWORD,
    email_change_refusal,
    name_change,
)


def test_a_new_name_is_a_change_with_its_before_and_after() -> None:
    assert name_change("Ana Lyma", "Ana Lima") == ("Ana Lyma", "Ana Lima")


def test_the_same_name_again_is_no_change() -> None:
    assert name_change("Ana Lima", "Ana Lima") is None


def test_a_case_only_name_fix_is_a_change() -> None:
    assert name_change("ana lima", "Ana Lima") == ("ana lima", "Ana Lima")


def test_the_current_login_email_cannot_be_asked_for_whatever_its_case() -> None:
    assert email_change_refusal("ana@example.org", " ANA@Example.org ") == "same"


def test_another_address_can_be_asked_for() -> None:
    assert email_change_refusal("ana@example.org", "ana.lima@example.net") is None


def test_an_email_change_token_is_its_own_purpose() -> None:
    # A set-password or confirmation link never changes the login email, and back.
    assert CHANGE_EMAIL not in SET_PASSWORD
    assert CHANGE_EMAIL != CONFIRM_EMAIL
