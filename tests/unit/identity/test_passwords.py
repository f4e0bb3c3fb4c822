"""The shared password rules and Argon2 hashing (identity and membership both use them)."""

from __future__ import annotations

import pytest

from prodigy_users.runtime.passwords import (
    DUMMY_HASH,
    hash_password,
    is_password_hash,
    needs_rehash,
    password_problems,
    verify_password,
)

GOOD = "correct horse battery"


def test_hash_verifies_the_password_and_nothing_else() -> None:
    stored = hash_password(GOOD)
    assert stored != GOOD and GOOD not in stored
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, GOOD)
    assert not verify_password(stored, GOOD + "!")


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password(GOOD) != hash_password(GOOD)


@pytest.mark.parametrize("garbage", ["", "plain text", "$argon2id$broken", "$2b$12$bcrypt"])
def test_a_malformed_hash_never_verifies(garbage: str) -> None:
    assert verify_password(garbage, GOOD) is False


def test_the_dummy_hash_is_a_real_argon2_hash_that_matches_nothing_typed() -> None:
    assert is_password_hash(DUMMY_HASH)
    assert not verify_password(DUMMY_HASH, GOOD)
    assert not verify_password(DUMMY_HASH, "")


def test_only_argon2_hashes_pass_as_hashes() -> None:
    assert is_password_hash(hash_password(GOOD))
    assert not is_password_hash(GOOD)
    assert not is_password_hash("$2b$12$abcdefghijklmnopqrstuv")


def test_policy_accepts_email_positionally_and_by_keyword() -> None:
    assert password_problems("ana@example.org", "Ana@Example.org") == [
        "must not be your email address"
    ]
    assert "must not be your email address" in password_problems(
        " ana@example.org ", email="ana@example.org"
    )


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    # A failed sign-in for an unknown address verifies against DUMMY_HASH: with other
    # parameters than real hashes it would take another time, and tell them apart.
    assert DUMMY_HASH.startswith("$argon2id$")
    assert not needs_rehash(DUMMY_HASH)
    assert verify_password(DUMMY_HASH, "not-a-real-password-0")
