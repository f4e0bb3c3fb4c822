"""Reporting's lifecycle rules: groups by id with current names, the history's names,
and the public shape of the users table's ``groups``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prodigy_users.reporting.projection.rules import HISTORY_EVENTS, history_event
from prodigy_users.reporting.rules import GroupRef, UserRow, group_refs, sort_name
from prodigy_users.reporting.users.api import UserPublic

NIGHT, DAY, GONE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NAMES = {NIGHT: "night shift", DAY: "Day shift"}


def test_groups_read_with_their_current_names_sorted_by_name() -> None:
    refs = group_refs([NIGHT, DAY], NAMES)
    assert refs == (GroupRef(DAY, "Day shift"), GroupRef(NIGHT, "night shift"))


def test_an_unknown_group_id_is_left_out_and_duplicates_collapse() -> None:
    assert group_refs([GONE, NIGHT, NIGHT], NAMES) == (GroupRef(NIGHT, "night shift"),)
    assert group_refs([], NAMES) == ()


def test_every_lifecycle_event_has_a_history_name() -> None:
    assert set(HISTORY_EVENTS.values()) == {
        "joined",
        "role_changed",
        "status_changed",
        "employee_id_set",
        "joined_group",
        "left_group",
        "removed",
        "restored",
        "merged",
    }
    assert history_event("membership.member_removed") == "removed"
    assert history_event("membership.something_new") == "membership.something_new"


def test_the_users_table_shows_groups_as_id_and_name() -> None:
    row = UserRow(
        department_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        name="Ana Lima",
        sort_name=sort_name("Ana Lima"),
        email="ana@example.org",
        role="member",
        status="inactive",
        employee_id="E-7",
        groups=[NIGHT],
        joined_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    body = UserPublic.of(row, group_refs(row.groups, NAMES)).model_dump(mode="json")
    assert body["groups"] == [{"group_id": str(NIGHT), "name": "night shift"}]
    assert body["status"] == "inactive" and body["employee_id"] == "E-7"
