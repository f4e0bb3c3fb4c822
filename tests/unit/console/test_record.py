"""The individual record's page without I/O: the history in sentences, the profile after
an action (membership's answer over reporting's copy), when to say the record catches
up, and the groups offered."""

from __future__ import annotations

import uuid

import pytest

from prodigy_users.console.forms import FormErrors
from prodigy_users.console.record_view import (
    Group,
    Outcome,
    Profile,
    catching_up,
    day,
    group_choices,
    group_names,
    history,
    history_text,
    number,
    parse_uuid,
    when,
)

NIGHT, DAY, GONE = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
RECORD = {
    "name": "Ana Lima",
    "email": "ana@example.org",
    "role": "member",
    "status": "active",
    "employee_id": None,
    "groups": [{"group_id": NIGHT, "name": "Night shift"}],
    "joined_at": "2026-03-04T05:06:07+00:00",
    "history": [
        {
            "at": "2026-03-04T05:06:07+00:00",
            "event": "joined",
            "details": {"role": "member", "via": "invitation"},
        },
        {
            "at": "2026-03-05T09:00:00+00:00",
            "event": "joined_group",
            "details": {"group_id": NIGHT},
        },
        {"at": "2026-03-06T10:30:00+00:00", "event": "left_group", "details": {"group_id": GONE}},
    ],
}
GROUPS = [
    {"group_id": NIGHT, "name": "Night shift", "member_count": 1},
    {"group_id": DAY, "name": "day shift", "member_count": 0},
]


@pytest.mark.parametrize(
    ("event", "details", "text"),
    [
        ("joined", {"role": "member", "via": "admin_add"}, "Joined as Member, added by an admin."),
        (
            "joined",
            {"role": "admin", "via": "operator"},
            "Joined as Admin, as the department's first admin.",
        ),
        ("joined", {"role": "officer", "via": "import"}, "Joined as Officer, in a bulk upload."),
        ("joined", {"role": "member"}, "Joined as Member."),
        (
            "restored",
            {"role": "officer", "via": "invitation"},
            "Came back as Officer, through an invitation.",
        ),
        (
            "role_changed",
            {"role": "officer", "previous_role": "member"},
            "Role changed from Member to Officer.",
        ),
        ("status_changed", {"status": "inactive"}, "Marked inactive."),
        ("employee_id_set", {"employee_id": "E-7"}, "Employee ID set to E-7."),
        ("employee_id_set", {"employee_id": None}, "Employee ID cleared."),
        ("joined_group", {"group_id": NIGHT}, "Added to Night shift."),
        ("left_group", {"group_id": GONE}, "Taken out of a group that has since been deleted."),
        ("removed", {}, "Removed from the department."),
        (
            "renamed",
            {"name": "Ana Lima", "previous_name": "Ana Lyma"},
            "Name corrected from Ana Lyma to Ana Lima.",
        ),
        ("something_new", {}, "Something new."),
    ],
)
def test_each_history_entry_reads_as_a_sentence(
    event: str, details: dict[str, object], text: str
) -> None:
    assert history_text(event, details, {NIGHT: "Night shift"}) == text


def test_the_history_is_newest_first_with_readable_times() -> None:
    lines = history(RECORD, group_names(RECORD, GROUPS))
    assert [line.text for line in lines] == [
        "Taken out of a group that has since been deleted.",
        "Added to Night shift.",
        "Joined as Member, through an invitation.",
    ]
    assert lines[-1].at == "2026-03-04T05:06:07+00:00"
    assert lines[-1].when == "4 Mar 2026, 05:06 UTC"


def test_dates_times_and_figures_are_written_for_people() -> None:
    assert when("2026-12-05T14:03:59.123456+00:00") == "5 Dec 2026, 14:03 UTC"
    assert when(None) == "" and when("not a time") == "not a time"
    assert day("2026-12-05") == "5 Dec 2026" and day("2026-12-05T01:00:00Z") == "5 Dec 2026"
    assert number(4.5) == "4.5" and number(2.0) == "2" and number("n/a") == "n/a"


def test_membership_answer_is_what_the_profile_shows_until_reporting_has_it() -> None:
    shown = Profile.of(RECORD)
    names = group_names(RECORD, GROUPS)
    member = {"role": "officer", "status": "active", "employee_id": "E-7", "groups": [NIGHT, DAY]}
    outcome = Outcome(
        "role",
        "{name} is now {article} {role_name}.",
        member=member,
        values={"article": "an", "role_name": "Officer"},
    )
    expected = outcome.expected(shown, names)
    assert expected is not None
    assert (expected.role, expected.employee_id) == ("officer", "E-7")
    assert [g.name for g in expected.sorted_groups] == ["day shift", "Night shift"]
    assert catching_up(shown, expected), "reporting still has the old role"
    assert outcome.sentence(expected, names) == "Ana Lima is now an Officer."
    # Once reporting has caught up, nothing more is said.
    caught_up = Profile.of(
        {
            **RECORD,
            "role": "officer",
            "employee_id": "E-7",
            "groups": [
                {"group_id": DAY, "name": "day shift"},
                {"group_id": NIGHT, "name": "Night shift"},
            ],
        }
    )
    assert not catching_up(caught_up, outcome.expected(caught_up, names))
    # An action that changes nothing of the profile (a password reset) says nothing of it.
    assert not catching_up(shown, Outcome("password").expected(shown, names))


def test_a_group_joined_or_left_shows_at_once() -> None:
    shown = Profile.of(RECORD)
    names = group_names(RECORD, GROUPS)
    joined = Outcome("groups", "{name} was added to {group}.", group=(DAY, True))
    expected = joined.expected(shown, names)
    assert expected is not None and {g.id for g in expected.groups} == {NIGHT, DAY}
    assert joined.sentence(expected, names) == "Ana Lima was added to day shift."
    left = Outcome("groups", "{name} left {group}.", group=(NIGHT, False))
    expected = left.expected(shown, names)
    assert expected is not None and expected.groups == ()
    assert catching_up(shown, expected)


def test_values_typed_by_the_admin_are_never_read_as_a_template() -> None:
    outcome = Outcome(
        "employee_id", "Employee ID set to {employee_id}.", values={"employee_id": "{name}{0}"}
    )
    assert outcome.sentence(Profile.of(RECORD), {}) == "Employee ID set to {name}{0}."


def test_the_groups_offered_are_those_the_person_is_not_in_by_name() -> None:
    profile = Profile.of(RECORD)
    assert group_choices(profile, GROUPS) == [Group(DAY, "day shift")]
    assert group_choices(profile.with_group(Group(DAY, "day shift"), member=True), GROUPS) == []


def test_an_outcome_keeps_its_errors_and_ids_are_read_safely() -> None:
    errors = FormErrors()
    errors.add("This is the department's only admin; make someone else admin first.")
    assert Outcome("role", errors=errors).errors.summary[0].field is None
    assert parse_uuid(f" {NIGHT} ") == uuid.UUID(NIGHT)
    assert parse_uuid("") is None and parse_uuid("../etc") is None


def test_the_history_says_who_made_each_change_when_reporting_knows() -> None:
    from prodigy_users.console.record_view import history

    lines = history(
        {
            "history": [
                {
                    "at": "2026-12-01T09:00:00+00:00",
                    "event": "joined",
                    "details": {"role": "member"},
                },
                {
                    "at": "2026-12-02T09:00:00+00:00",
                    "event": "removed",
                    "details": {},
                    "by": {"kind": "admin", "label": "Ada Admin"},
                },
                {
                    "at": "2026-12-03T09:00:00+00:00",
                    "event": "status_changed",
                    "details": {"status": "inactive"},
                    "by": {"kind": "system", "label": "the system"},
                },
            ]
        },
        {},
    )
    assert [(line.text, line.by, line.by_kind) for line in lines] == [
        ("Marked inactive.", "", ""),
        ("Removed from the department.", "Ada Admin", "admin"),
        ("Joined as Member.", "", ""),
    ]
