"""The training record's rules: plan status, transcript order, totals, what may be printed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prodigy_users.reporting.errors import RevokedCertificate, UnknownCertificate
from prodigy_users.reporting.record.rules import (
    Assignment,
    Completion,
    Totals,
    certificate,
    combined_totals,
    newest_first,
    plan_items,
    totals,
    training,
    valid_certificates,
)

TODAY = date(2026, 11, 26)
REVOKED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def assigned(course: str, *, on: date = date(2026, 11, 1), due: date | None = None) -> Assignment:
    return Assignment(
        course_id=course,
        title=course.title(),
        plan="2026",
        due_on=due,
        assigned_at=datetime(on.year, on.month, on.day, 9, 0, tzinfo=UTC),
    )


def completed(
    cert: str, course: str, on: date, hours: str = "1", credits: str = "0", revoked: bool = False
) -> Completion:
    return Completion(
        certificate_id=cert,
        course_id=course,
        title=course.title(),
        completed_on=on,
        hours=Decimal(hours),
        credits=Decimal(credits),
        revoked_at=REVOKED_AT if revoked else None,
        revoke_reason="Issued in error" if revoked else None,
    )


def test_a_completion_on_or_after_the_assignment_completes_the_plan_entry() -> None:
    [item] = plan_items(
        [assigned("cpr", on=date(2026, 11, 1))],
        [completed("c1", "cpr", date(2026, 11, 1))],
        TODAY,
    )
    assert item.status == "completed"
    assert item.completion is not None and item.completion.certificate_id == "c1"
    assert not item.overdue


def test_an_earlier_completion_does_not_fulfil_a_renewal() -> None:
    [item] = plan_items(
        [assigned("cpr", on=date(2026, 11, 1), due=date(2026, 11, 20))],
        [completed("old", "cpr", date(2024, 10, 31))],
        TODAY,
    )
    assert (item.status, item.completion, item.overdue) == ("assigned", None, True)


def test_a_revoked_certificate_completes_nothing() -> None:
    [item] = plan_items(
        [assigned("cpr", due=date(2026, 12, 31))],
        [completed("c1", "cpr", date(2026, 11, 5), revoked=True)],
        TODAY,
    )
    assert (item.status, item.overdue) == ("assigned", False)


def test_the_first_fulfilling_completion_is_shown() -> None:
    [item] = plan_items(
        [assigned("cpr")],
        [
            completed("later", "cpr", date(2026, 11, 20)),
            completed("first", "cpr", date(2026, 11, 3)),
            completed("other-course", "ethics", date(2026, 11, 2)),
        ],
        TODAY,
    )
    assert item.completion is not None and item.completion.certificate_id == "first"


def test_the_plan_is_soonest_due_first_and_undated_last() -> None:
    items = plan_items(
        [
            assigned("zeta"),
            assigned("beta", due=date(2027, 1, 1)),
            assigned("alpha", due=date(2026, 12, 1)),
            assigned("gamma"),
        ],
        [],
        TODAY,
    )
    assert [i.assignment.course_id for i in items] == ["alpha", "beta", "gamma", "zeta"]


def test_the_transcript_is_newest_first() -> None:
    ordered = newest_first(
        [
            completed("b", "x", date(2026, 1, 1)),
            completed("c", "x", date(2026, 6, 1)),
            completed("a", "x", date(2026, 1, 1)),
        ]
    )
    assert [c.certificate_id for c in ordered] == ["c", "a", "b"]


def test_totals_are_exact_and_leave_revoked_certificates_out() -> None:
    result = totals(
        [
            completed("a", "x", TODAY, hours="0.1", credits="0.05"),
            completed("b", "y", TODAY, hours="0.2", credits="0.10"),
            completed("c", "z", TODAY, hours="8", credits="1", revoked=True),
        ]
    )
    assert result.hours == Decimal("0.3")
    assert result.credits == Decimal("0.15")
    assert result.certificates == 2


def test_nothing_yet_is_all_zero() -> None:
    record = training([], [], TODAY)
    assert (record.plans, record.transcript) == ([], [])
    assert record.totals == Totals(Decimal(0), Decimal(0), 0)


def test_only_a_known_valid_certificate_is_printed() -> None:
    transcript = [
        completed("valid", "x", TODAY),
        completed("gone", "y", TODAY, revoked=True),
    ]
    assert certificate(transcript, "valid").certificate_id == "valid"
    with pytest.raises(RevokedCertificate):
        certificate(transcript, "gone")
    with pytest.raises(UnknownCertificate):
        certificate(transcript, "never-issued")
    assert [c.certificate_id for c in valid_certificates(transcript)] == ["valid"]


def test_combined_totals_add_up_every_departments_own() -> None:
    combined = combined_totals(
        [
            Totals(Decimal("4.5"), Decimal("0.5"), 1),
            Totals(Decimal("8"), Decimal("0.25"), 2),
        ]
    )
    assert combined == Totals(Decimal("12.5"), Decimal("0.75"), 3)
    assert combined_totals([]) == Totals(Decimal(0), Decimal(0), 0)
