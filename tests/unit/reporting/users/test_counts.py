"""How the users table counts a view: from the counts the projection keeps (role and
status filters), row by row up to a cap (a search or a group), or not at all (a search
too short for the index); and how the projection moves the kept counts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from prodigy_users.reporting.projection.rules import count_changes, standing
from prodigy_users.reporting.rules import UserRow
from prodigy_users.reporting.users.rules import (
    COUNT_CAP,
    Total,
    capped_total,
    count_method,
    cursor_total,
    decode_position,
    encode_position,
    kept_total,
    parse_view,
)

DEPT, OTHER = uuid.uuid4(), uuid.uuid4()
ANA, BEN = uuid.uuid4(), uuid.uuid4()
NIGHT = uuid.uuid4()
COUNTS = [
    ("admin", "active", 2),
    ("officer", "active", 5),
    ("officer", "inactive", 1),
    ("member", "active", 90),
    ("member", "inactive", 12),
]


@pytest.mark.parametrize(
    ("query", "method"),
    [
        ({}, "kept"),
        ({"role": ["officer"], "status": ["inactive"]}, "kept"),
        ({"sort": "-joined_at"}, "kept"),
        ({"group": [str(NIGHT)]}, "capped"),
        ({"q": "lima"}, "capped"),
        ({"q": "  NÚÑ  "}, "capped"),  # folded to "nun": three characters
        ({"q": "an", "role": ["member"]}, "none"),
        ({"q": "é"}, "none"),
        ({"q": "   "}, "kept"),  # blank: no search at all
    ],
)
def test_each_view_is_counted_the_cheap_way_its_filters_allow(
    query: dict[str, object], method: str
) -> None:
    view = parse_view(DEPT, **query)  # type: ignore[arg-type]
    assert count_method(view) == method


def test_kept_counts_add_up_the_roles_and_statuses_of_the_view() -> None:
    def total(**query: list[str]) -> Total:
        return kept_total(COUNTS, parse_view(DEPT, **query).filters)  # type: ignore[arg-type]

    assert total() == Total(110)
    assert total(role=["officer"]) == Total(6)
    assert total(status=["inactive"]) == Total(13)
    assert total(role=["admin", "officer"], status=["active"]) == Total(7)
    assert total(role=["admin"], status=["inactive"]) == Total(0)
    assert kept_total([], parse_view(DEPT).filters) == Total(0)


def test_a_capped_count_says_more_than_the_cap() -> None:
    assert capped_total(0) == Total(0)
    assert capped_total(COUNT_CAP) == Total(COUNT_CAP)
    assert capped_total(COUNT_CAP + 1) == Total(COUNT_CAP, exact=False)
    assert capped_total(11, cap=10) == Total(10, exact=False)


def _row(account: uuid.UUID, role: str = "member", status: str = "active") -> UserRow:
    now = datetime.now(UTC)
    return UserRow(DEPT, account, "A", "a", "a@example.org", role, status, None, [], now, now)


def test_a_row_counts_for_its_role_and_status_while_it_is_current() -> None:
    assert standing(_row(ANA, "officer", "inactive")) == ("officer", "inactive")
    removed = _row(ANA)
    removed.removed_at = datetime.now(UTC)
    assert standing(removed) is None
    assert standing(None) is None


def test_the_counts_move_with_what_a_run_of_events_changed() -> None:
    before = {(DEPT, ANA): ("member", "active"), (DEPT, BEN): None}
    # Ana became an inactive officer; Ben joined; a newcomer of another department too.
    after = {
        (DEPT, ANA): ("officer", "inactive"),
        (DEPT, BEN): ("member", "active"),
        (OTHER, ANA): ("admin", "active"),
    }
    moves = count_changes(before, after)
    assert moves == {
        (DEPT, "officer", "inactive"): 1,
        (OTHER, "admin", "active"): 1,
    }, "Ana's -1 and Ben's +1 on member/active cancel out: no zero moves"


def test_removals_restorations_and_no_change_move_the_counts_accordingly() -> None:
    removed = count_changes({(DEPT, ANA): ("member", "inactive")}, {(DEPT, ANA): None})
    assert removed == {(DEPT, "member", "inactive"): -1}
    restored = count_changes({(DEPT, ANA): None}, {(DEPT, ANA): ("officer", "active")})
    assert restored == {(DEPT, "officer", "active"): 1}
    # A run that changed only an employee ID or groups moves nothing.
    assert (
        count_changes({(DEPT, ANA): ("member", "active")}, {(DEPT, ANA): ("member", "active")})
        == {}
    )
    # A removed person's row changing while removed moves nothing either.
    assert count_changes({(DEPT, ANA): None}, {(DEPT, ANA): None}) == {}


def test_a_cursor_carries_the_views_total_to_the_next_pages() -> None:
    view = parse_view(DEPT, role=["member"], sort="-joined_at")
    keys = (datetime.now(UTC), uuid.uuid4())
    counted = encode_position(view, keys, Total(1234))
    assert decode_position(counted, view) == keys
    assert cursor_total(counted) == Total(1234)
    assert cursor_total(encode_position(view, keys, Total(COUNT_CAP, exact=False))) == Total(
        COUNT_CAP, exact=False
    )
    assert cursor_total(encode_position(view, keys)) is None  # not counted: counted again


@pytest.mark.parametrize("carried", [[-1, True], ["12", True], [True, True], [3, "yes"], [3], 7])
def test_a_tampered_total_in_a_cursor_is_ignored(carried: object) -> None:
    doc = {"s": "name", "v": "x", "k": [], "t": carried}
    value = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    assert cursor_total(value) is None
    assert cursor_total("not base64 at all!") is None
