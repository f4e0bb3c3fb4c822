"""Bulk-upload rules: header aliases, row validation, duplicates, decisions, results.csv."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from prodigy_users.membership.errors import PROBLEMS
from prodigy_users.membership.imports.rules import (
    Changes,
    Member,
    PlannedRow,
    classify,
    map_columns,
    plan_rows,
    results_lines,
    template_csv,
)
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import problem_of

ACCOUNT = uuid.uuid4()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Name", "Email", "Role", "Employee ID", "Groups"], None),
        (
            [" E-mail Address ", "FULL NAME", "user_role", "employee_id", "Team"],
            {"email": 0, "name": 1, "role": 2, "employee_id": 3, "groups": 4},
        ),
        (
            ["First Name", "Surname", "Mail", "Badge #"],
            {"first_name": 0, "last_name": 1, "email": 2, "employee_id": 3},
        ),
    ],
)
def test_headers_are_matched_forgivingly(
    headers: list[str], expected: dict[str, int] | None
) -> None:
    columns = map_columns(headers)
    if expected is None:
        expected = {"name": 0, "email": 1, "role": 2, "employee_id": 3, "groups": 4}
    assert columns.index == expected
    assert columns.ignored == []


def test_unknown_and_repeated_headers_are_ignored_and_named() -> None:
    columns = map_columns(["Email", "Shoe size", "E-mail", ""])
    assert columns.index == {"email": 0}
    assert columns.ignored == ["Shoe size", "E-mail"]


def test_no_email_column_is_a_422_naming_what_was_found() -> None:
    with pytest.raises(DomainError) as caught:
        map_columns(["Name", "Phone"])
    problem = problem_of(caught.value, PROBLEMS)
    assert (problem.status, problem.slug) == (422, "no-email-column")
    assert "'Phone'" in problem.detail
    assert problem.errors == [{"field": "file", "message": "no email column in the header row"}]


def _plan(*rows: list[str], headers: list[str] | None = None) -> list[PlannedRow]:
    columns = map_columns(headers or ["Name", "Email", "Role", "Employee ID", "Groups"])
    return plan_rows([(i + 2, r) for i, r in enumerate(rows)], columns)


def test_valid_rows_are_normalised_and_left_for_the_worker() -> None:
    [row] = _plan(["  Ana   Lima ", "Ana.Lima@Example.ORG", "Officer", "E-1", "Night; day ;night;"])
    assert row.outcome is None
    assert row.name == "Ana Lima"
    assert row.email == "Ana.Lima@example.org"
    assert row.email_normalised == "ana.lima@example.org"
    assert (row.role, row.employee_id) == ("officer", "E-1")
    assert row.groups == ("Night", "day")


def test_first_and_last_name_make_the_name() -> None:
    [row] = _plan(["Bo", "Lee", "bo@example.org"], headers=["First name", "Last name", "Email"])
    assert row.name == "Bo Lee"


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["Ana", "", "", "", ""], "email is missing"),
        (["Ana", "ana@@example.org", "", "", ""], "not a valid email address"),
        (["Ana", "ana@example.org", "captain", "", ""], "unknown role 'captain'"),
        (['=HYPERLINK("http://x")', "ana@example.org", "", "", ""], "formula"),
        (["Ana", "ana@example.org", "", "@SUM(A1)", ""], "employee ID '@SUM(A1)'"),
        (["Ana", "ana@example.org", "", "", "Night;+cmd"], "group name '+cmd'"),
        (["A" * 201, "ana@example.org", "", "", ""], "longer than 200"),
    ],
)
def test_invalid_rows_say_why(cells: list[str], reason: str) -> None:
    [row] = _plan(cells)
    assert row.outcome == "invalid"
    assert row.reason is not None and reason in row.reason


def test_duplicates_only_count_valid_rows() -> None:
    rows = _plan(
        ["A", "dup@example.org", "boss", "", ""],  # invalid: does not claim the address
        ["B", "DUP@example.org", "", "E-7", ""],
        ["C", "dup@example.org", "", "", ""],
        ["D", "other@example.org", "", "E-7", ""],
    )
    assert [(r.line, r.outcome) for r in rows] == [
        (2, "invalid"),
        (3, None),
        (4, "duplicate_in_file"),
        (5, "invalid"),
    ]
    assert rows[2].reason == "same email as line 3"
    assert rows[3].reason == "employee ID 'E-7' is also on line 3"


def _row(**values: object) -> PlannedRow:
    base: dict[str, object] = {
        "line": 2,
        "cells": (),
        "name": "Ana Lima",
        "email": "ana@example.org",
        "email_normalised": "ana@example.org",
    }
    return PlannedRow(**{**base, **values})  # type: ignore[arg-type]


MEMBER = Member(ACCOUNT, "member", None, {"night": "Night"})


def test_decisions_for_new_people() -> None:
    assert (
        classify(_row(), mode="add", member=None, has_account=False, employee_id_holder=None).step
        == "create"
    )
    assert (
        classify(_row(), mode="add", member=None, has_account=True, employee_id_holder=None).step
        == "invite"
    )
    nameless = classify(
        _row(name=None), mode="add", member=None, has_account=False, employee_id_holder=None
    )
    assert (nameless.outcome, nameless.reason) == (
        "invalid",
        "name is missing (needed to create an account)",
    )
    clash = classify(
        _row(employee_id="E-1"),
        mode="add",
        member=None,
        has_account=False,
        employee_id_holder=uuid.uuid4(),
    )
    assert clash.outcome == "invalid"
    assert clash.reason is not None and "'E-1' is already used" in clash.reason


def test_members_are_left_alone_in_add_mode() -> None:
    decision = classify(
        _row(role="admin"), mode="add", member=MEMBER, has_account=True, employee_id_holder=None
    )
    assert (decision.step, decision.outcome) == ("done", "already_member")


def test_update_mode_changes_what_the_row_says_and_leaves_empty_cells_alone() -> None:
    decision = classify(
        _row(role="officer", employee_id="E-9", groups=("Day",)),
        mode="update",
        member=MEMBER,
        has_account=True,
        employee_id_holder=None,
    )
    assert decision.step == "update" and decision.account_id == ACCOUNT
    assert decision.changes == Changes(
        role=("member", "officer"),
        employee_id=(None, "E-9"),
        groups_added=("Day",),
        groups_removed=("Night",),
    )
    assert (
        decision.changes.describe()
        == "role member -> officer; employee ID (none) -> E-9; groups +Day -Night"
    )
    assert Changes.from_json(decision.changes.as_json()) == decision.changes

    same = classify(
        _row(groups=("night",)),
        mode="update",
        member=MEMBER,
        has_account=True,
        employee_id_holder=None,
    )
    assert (same.outcome, same.reason) == ("already_member", "already a member: nothing to change")


def test_update_to_an_employee_id_someone_else_has_is_invalid() -> None:
    decision = classify(
        _row(employee_id="E-1"),
        mode="update",
        member=MEMBER,
        has_account=True,
        employee_id_holder=uuid.uuid4(),
    )
    assert decision.outcome == "invalid"
    mine = classify(
        _row(employee_id="E-1"),
        mode="update",
        member=MEMBER,
        has_account=True,
        employee_id_holder=ACCOUNT,
    )
    assert mine.step == "update"


def test_results_csv_neutralises_every_formula_cell() -> None:
    lines = results_lines(
        ["Name", "Email"],
        [
            (2, ["=cmd|' /C calc'!A0", "a@example.org"], "invalid", "name starts with '='"),
            (3, ["Bo"], "created", None),
            (4, ["Cy", "c@example.org"], None, None),
        ],
    )
    text = "".join(lines)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [
        ["line", "Name", "Email", "outcome", "reason"],
        ["2", "'=cmd|' /C calc'!A0", "a@example.org", "invalid", "name starts with '='"],
        ["3", "Bo", "", "created", ""],
        ["4", "Cy", "c@example.org", "pending", ""],
    ]


def test_template_csv_is_the_header_row() -> None:
    assert template_csv() == "\ufeffName,Email,Role,Employee ID,Groups\r\n"


CONTROLS = [*(chr(c) for c in range(0x20)), "\x7f", *(chr(c) for c in range(0x80, 0xA0))]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_a_control_character_in_a_read_cell_makes_the_row_invalid(char: str) -> None:
    rows = _plan(
        [f"Ana{char}Lima", "ana@example.org", "", "", ""],
        ["Bo", f"bo{char}x@example.org", "", "", ""],
        ["Cy", "cy@example.org", "", f"E{char}1", ""],
        ["Di", "di@example.org", "", "", f"Night{char}shift"],
        ["Ed", "ed@example.org", f"mem{char}ber", "", ""],
        [f"{char}=HYPERLINK(1)", "fy@example.org", "", "", ""],
        ["Gil", "gil@example.org", "", "", ""],
    )
    labels = ["name", "email", "employee ID", "groups", "role", "name"]
    for row, label in zip(rows, labels, strict=False):
        assert row.outcome == "invalid", (row.line, row.reason)
        assert row.reason is not None
        assert row.reason.startswith(f"{label} contains a control character (U+{ord(char):04X}")
        assert char not in row.reason
    assert rows[-1].outcome is None, "the other rows go on"


def test_columns_nobody_reads_may_hold_anything_but_nul_is_kept_as_a_replacement() -> None:
    [row] = _plan(["Ana", "ana@example.org", "Notes\there\x00"], headers=["Name", "Email", "Notes"])
    assert row.outcome is None, row.reason
    assert row.cells == ("Ana", "ana@example.org", "Notes\there\ufffd"), "PostgreSQL has no NUL"
    [bad] = _plan(["Ana\x00", "ana@example.org"], headers=["Name", "Email"])
    assert bad.outcome == "invalid" and bad.cells[0] == "Ana\ufffd"
