"""Reporting's rules: who sees reports, the name order, the opaque cursor, paging."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from prodigy_users.reporting.domain import (
    Cursor,
    InvalidCursor,
    UserRow,
    can_view_reports,
    decode_cursor,
    encode_cursor,
    page_of,
    sort_name,
)


def row(name: str) -> UserRow:
    return UserRow(
        department_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        name=name,
        sort_name=sort_name(name),
        email=f"{name.lower()}@example.org",
        role="member",
        status="active",
        employee_id=None,
        groups=(),
        joined_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("admin", True), ("officer", True), ("member", False), (None, False), ("", False)],
)
def test_admins_and_officers_see_reports(role: str | None, allowed: bool) -> None:
    assert can_view_reports(role) is allowed


def test_names_sort_without_regard_to_case_or_accents() -> None:
    names = ["bob", "Zoë", "Émile", "álvaro", "Ana", "zed"]
    assert sorted(names, key=sort_name) == ["álvaro", "Ana", "bob", "Émile", "zed", "Zoë"]
    assert sort_name("ÁNA") == sort_name("ana")


@pytest.mark.parametrize("name", ["ana lima", "Émile Zoë", "名前", "", 'a"b,c]'])
def test_cursor_round_trips(name: str) -> None:
    cursor = Cursor(sort_name=name, account_id=uuid.uuid4())
    encoded = encode_cursor(cursor)
    assert "=" not in encoded and "/" not in encoded and "+" not in encoded
    assert decode_cursor(encoded) == cursor


def test_cursor_is_base64_of_the_sort_key() -> None:
    account = uuid.uuid4()
    encoded = encode_cursor(Cursor("ana", account))
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    assert "ana" in raw and str(account) in raw


@pytest.mark.parametrize(
    "value",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"s": "name", "k": ["a"]}').decode(),
        base64.urlsafe_b64encode(b'{"s": "name", "k": ["a", "not-a-uuid"]}').decode(),
        base64.urlsafe_b64encode(
            b'{"s": "name", "k": [1, "' + str(uuid.uuid4()).encode() + b'"]}'
        ).decode(),
        base64.urlsafe_b64encode(
            b'{"s": "joined", "k": ["a", "' + str(uuid.uuid4()).encode() + b'"]}'
        ).decode(),
        "",
    ],
)
def test_bad_cursors_are_refused(value: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(value)


def test_a_full_page_points_at_its_last_row() -> None:
    rows = [row(n) for n in ("Ana", "Bob", "Cid")]
    page = page_of(rows, 2)
    assert [r.name for r in page.items] == ["Ana", "Bob"]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == rows[1].cursor()


def test_the_last_page_has_no_cursor() -> None:
    rows = [row(n) for n in ("Ana", "Bob")]
    assert page_of(rows, 2).next_cursor is None
    assert page_of([], 5).next_cursor is None
