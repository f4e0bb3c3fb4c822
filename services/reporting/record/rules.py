"""Rules of the individual record: its history entries, and the training part (plan
status, transcript order, totals, which certificates may be printed). No I/O.

Training is derived when the record is read, from the stored assignments and
completions, so the order in which their events arrived does not matter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ..errors import RevokedCertificate, UnknownCertificate

PlanStatus = Literal["assigned", "completed"]


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened to a person's membership."""

    at: datetime
    event: str
    details: dict[str, Any] = field(default_factory=dict)
    # Who made the change (``activity.rules.ActorKind``), None if not recorded.
    actor_kind: str | None = None
    actor_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Assignment:
    """A course on a person's training plan."""

    course_id: str
    title: str
    plan: str | None
    due_on: date | None
    assigned_at: datetime


@dataclass(frozen=True)
class Completion:
    """One transcript entry: a completed course and its certificate."""

    certificate_id: str
    course_id: str
    title: str
    completed_on: date
    hours: Decimal
    credits: Decimal
    revoked_at: datetime | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        """A revoked certificate stays on the transcript but counts for nothing."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class PlanItem:
    """A course on the plan with where the person stands on it."""

    assignment: Assignment
    status: PlanStatus
    completion: Completion | None
    overdue: bool


@dataclass(frozen=True)
class Totals:
    """What the person's valid certificates add up to."""

    hours: Decimal
    credits: Decimal
    certificates: int


def combined_totals(totals: Iterable[Totals]) -> Totals:
    """Several departments' totals added up (each counts its own certificates)."""
    hours, credits, certificates = Decimal(0), Decimal(0), 0
    for t in totals:
        hours, credits, certificates = (
            hours + t.hours,
            credits + t.credits,
            certificates + t.certificates,
        )
    return Totals(hours, credits, certificates)


@dataclass(frozen=True)
class Training:
    """A person's training in one department, as the record shows it."""

    plans: list[PlanItem]
    transcript: list[Completion]
    totals: Totals


def newest_first(completions: Iterable[Completion]) -> list[Completion]:
    """The transcript's order: latest completion first, ties by certificate id."""
    by_id = sorted(completions, key=lambda c: c.certificate_id)
    return sorted(by_id, key=lambda c: c.completed_on, reverse=True)


def fulfilling(assignment: Assignment, completions: Iterable[Completion]) -> Completion | None:
    """The completion that fulfils a plan entry: the first valid one of the course on or
    after the day it was assigned (an earlier one was what the new assignment renews)."""
    assigned_on = assignment.assigned_at.date()
    candidates = [
        c
        for c in completions
        if c.course_id == assignment.course_id and not c.revoked and c.completed_on >= assigned_on
    ]
    return min(candidates, key=lambda c: (c.completed_on, c.certificate_id), default=None)


def plan_items(
    assignments: Iterable[Assignment], completions: Sequence[Completion], today: date
) -> list[PlanItem]:
    """The plan, soonest due first (no due date last), then by title."""
    items = []
    for assignment in assignments:
        done = fulfilling(assignment, completions)
        overdue = done is None and assignment.due_on is not None and assignment.due_on < today
        items.append(PlanItem(assignment, "completed" if done else "assigned", done, overdue))
    return sorted(
        items,
        key=lambda i: (
            i.assignment.due_on is None,
            i.assignment.due_on or date.min,
            i.assignment.title.casefold(),
            i.assignment.course_id,
        ),
    )


def totals(completions: Iterable[Completion]) -> Totals:
    """Hours, credits and the number of certificates, revoked ones left out."""
    valid = [c for c in completions if not c.revoked]
    return Totals(
        hours=sum((c.hours for c in valid), Decimal(0)),
        credits=sum((c.credits for c in valid), Decimal(0)),
        certificates=len(valid),
    )


def training(
    assignments: Iterable[Assignment], completions: Iterable[Completion], today: date
) -> Training:
    """The record's training part from what is stored."""
    transcript = newest_first(completions)
    return Training(plan_items(assignments, transcript, today), transcript, totals(transcript))


def certificate(transcript: Iterable[Completion], certificate_id: str) -> Completion:
    """The entry a certificate PDF is made from; ``UnknownCertificate`` or
    ``RevokedCertificate`` when there is none to issue."""
    for entry in transcript:
        if entry.certificate_id == certificate_id:
            if entry.revoked:
                raise RevokedCertificate()
            return entry
    raise UnknownCertificate()


def valid_certificates(transcript: Iterable[Completion]) -> list[Completion]:
    """Every certificate that may be issued, in transcript order."""
    return [c for c in transcript if not c.revoked]
