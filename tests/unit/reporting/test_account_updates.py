"""What an account's change of name or login email sets on its users-table rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prodigy_users.contracts.identity import AccountUpdated, Change
from prodigy_users.reporting.accounts import account_values
from prodigy_users.reporting.rules import sort_name

ACCOUNT = uuid.UUID("3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60")
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def test_a_new_name_sets_the_name_and_its_sort_key() -> None:
    event = AccountUpdated(
        account_id=ACCOUNT, name=Change(old="Ana Lyma", new="Ána Lima"), occurred_at=NOW
    )
    assert account_values(event) == {"name": "Ána Lima", "sort_name": sort_name("Ána Lima")}


def test_a_new_login_email_sets_the_email_only() -> None:
    event = AccountUpdated(
        account_id=ACCOUNT, email=Change(old="a@x.org", new="b@y.org"), occurred_at=NOW
    )
    assert account_values(event) == {"email": "b@y.org"}


def test_an_event_with_no_change_sets_nothing() -> None:
    assert account_values(AccountUpdated(account_id=ACCOUNT, occurred_at=NOW)) == {}
