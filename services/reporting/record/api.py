"""The record's HTTP routes: one person's individual record and their certificates.

Its router is included after the users table's, whose ``/users/export`` this
router's ``/users/{account}`` would otherwise match.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE

from ..activity.rules import By, said
from ..deps import RecordsService, ReportViewer
from ..errors import NoCertificates, NotAMember, RevokedCertificate, UnknownCertificate
from ..users.api import UserPublic
from .certificates import CertificateData, find_unicode_font, render
from .rules import Completion, HistoryEntry, PlanItem, Totals
from .service import IndividualRecord

router = APIRouter(prefix="/v1/reports", tags=["reports"])

PDF_MEDIA_TYPE = "application/pdf"


class ActorPublic(BaseModel):
    """Who made a change."""

    kind: str = Field(
        description="`admin` (an admin of the department), `self` (the person themselves), "
        "`import` (a bulk upload), `operator` (a platform operator) or `system` (the event "
        "names nobody).",
        examples=["admin"],
    )
    account_id: uuid.UUID | None = Field(
        default=None,
        description="The admin; the person themselves; the admin who uploaded the import "
        "(null for an operator's upload). Null for an operator and the system.",
    )
    name: str | None = Field(
        default=None,
        description="That account's name as reporting knows it now (null if unknown).",
        examples=["Ana Lima"],
    )
    label: str = Field(
        description="How to say it: the admin's name, `the person themselves`, `an import`, "
        "`an operator`, `the system` (`an admin` when the admin's name is unknown).",
        examples=["Ana Lima"],
    )

    @classmethod
    def of(cls, by: By) -> ActorPublic:
        """The public shape of an actor."""
        return cls(kind=by.kind, account_id=by.account_id, name=by.name, label=by.label)


class HistoryEntryPublic(BaseModel):
    """One thing that happened to the membership."""

    at: datetime = Field(description="When it happened (UTC).")
    event: str = Field(
        description=(
            "`joined`, `role_changed`, `status_changed`, `employee_id_set`, `joined_group`, "
            "`left_group`, `removed`, `restored`, `merged` or `renamed` (an admin of the "
            "department corrected the name: `{name, previous_name}`)."
        ),
        examples=["role_changed"],
    )
    details: dict[str, Any] = Field(
        default={},
        description='What changed, e.g. `{"role": "officer", "previous_role": "member"}`.',
    )
    by: ActorPublic | None = Field(
        default=None,
        description="Who made the change. Null for a change recorded before reporting kept "
        "who made changes (a replay of the read model fills it in).",
    )

    @classmethod
    def of(cls, entry: HistoryEntry, names: Mapping[uuid.UUID, str]) -> HistoryEntryPublic:
        """The public shape of a history entry, its actor named from ``names``."""
        by = None
        if entry.actor_kind is not None:
            by = ActorPublic.of(said(entry.actor_kind, entry.actor_id, names))
        return cls(at=entry.at, event=entry.event, details=entry.details, by=by)


class TrainingPlanItemPublic(BaseModel):
    """A course on the person's training plan."""

    course_id: str = Field(examples=["ems-cpr-2026"])
    title: str = Field(examples=["CPR and AED for Healthcare Providers"])
    plan: str | None = Field(
        default=None, description="The plan it belongs to, if any.", examples=["2026 recert"]
    )
    due_on: date | None = Field(default=None, description="When it is due, if ever.")
    assigned_at: datetime
    status: Literal["assigned", "completed"] = Field(
        description=(
            "`completed` once a valid certificate of the course dated on or after the day "
            "it was assigned is on the transcript."
        )
    )
    completed_on: date | None = Field(default=None, description="When, if completed.")
    certificate_id: str | None = Field(
        default=None, description="The certificate that completed it, if any."
    )
    overdue: bool = Field(description="Not completed and past its due date.")

    @classmethod
    def of(cls, item: PlanItem) -> TrainingPlanItemPublic:
        """The public shape of a plan entry."""
        a, done = item.assignment, item.completion
        return cls(
            course_id=a.course_id,
            title=a.title,
            plan=a.plan,
            due_on=a.due_on,
            assigned_at=a.assigned_at,
            status=item.status,
            completed_on=done.completed_on if done else None,
            certificate_id=done.certificate_id if done else None,
            overdue=item.overdue,
        )


class TranscriptEntryPublic(BaseModel):
    """A completed course with its certificate."""

    certificate_id: str = Field(examples=["cert-2026-000417"])
    course_id: str = Field(examples=["ems-cpr-2026"])
    title: str = Field(examples=["CPR and AED for Healthcare Providers"])
    completed_on: date
    hours: float = Field(examples=[4.5])
    credits: float = Field(examples=[0.5])
    revoked: bool = Field(
        description="A revoked certificate stays listed but counts for nothing and has no PDF."
    )
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @classmethod
    def of(cls, entry: Completion) -> TranscriptEntryPublic:
        """The public shape of a transcript entry."""
        return cls(
            certificate_id=entry.certificate_id,
            course_id=entry.course_id,
            title=entry.title,
            completed_on=entry.completed_on,
            hours=float(entry.hours),
            credits=float(entry.credits),
            revoked=entry.revoked,
            revoked_at=entry.revoked_at,
            revoked_reason=entry.revoke_reason,
        )


class TrainingTotalsPublic(BaseModel):
    """What the valid (not revoked) certificates add up to."""

    hours: float = Field(examples=[12.5])
    credits: float = Field(examples=[1.25])
    certificates: int = Field(examples=[3])

    @classmethod
    def of(cls, totals: Totals) -> TrainingTotalsPublic:
        """The public shape of the totals."""
        return cls(
            hours=float(totals.hours),
            credits=float(totals.credits),
            certificates=totals.certificates,
        )


class UserRecord(UserPublic):
    """The individual record of a person in one department."""

    department_id: uuid.UUID
    history: list[HistoryEntryPublic] = Field(
        default=[], description="The membership's history, oldest first."
    )
    training_plans: list[TrainingPlanItemPublic] = Field(
        default=[],
        description="Courses assigned to the person, soonest due first.",
    )
    transcript: list[TranscriptEntryPublic] = Field(
        default=[], description="Completed courses, newest first."
    )
    totals: TrainingTotalsPublic = Field(
        default_factory=lambda: TrainingTotalsPublic(hours=0, credits=0, certificates=0),
        description="Hours, credits and certificates of the transcript, revoked ones left out.",
    )


PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"type": "object"}}}
_PDF_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The PDF, with a file name in `Content-Disposition`.",
        "content": {PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
    403: {
        "description": "Not an admin or officer of this department.",
        "content": PROBLEM_CONTENT,
    },
}


@router.get(
    "/departments/{dept}/users/{account}",
    operation_id="get_department_user",
    response_model=UserRecord,
)
@raises(NotAMember)
async def get_department_user(
    dept: uuid.UUID, account: uuid.UUID, _: ReportViewer, records: RecordsService
) -> UserRecord:
    """One person's record in the department: profile, history, training plans, transcript
    and totals; 404 if they are not (or no longer) a member."""
    found = await records.individual_record(dept, account, today=datetime.now(UTC).date())
    return user_record(found)


def user_record(found: IndividualRecord) -> UserRecord:
    """The public shape of a record (the admins' view, and each department of the
    person's own)."""
    public = UserPublic.of(found.user, found.groups)
    return UserRecord(
        department_id=found.user.department_id,
        history=[HistoryEntryPublic.of(e, found.actor_names) for e in found.history],
        training_plans=[TrainingPlanItemPublic.of(i) for i in found.training.plans],
        transcript=[TranscriptEntryPublic.of(c) for c in found.training.transcript],
        totals=TrainingTotalsPublic.of(found.training.totals),
        **{name: getattr(public, name) for name in UserPublic.model_fields},
    )


def _render(certificates: list[CertificateData]) -> bytes:
    return render(certificates, font=find_unicode_font())


async def pdf_response(certificates: list[CertificateData], filename: str) -> Response:
    """Certificates rendered as one PDF download."""
    # Rendering is CPU work (tens of ms a page): off the event loop.
    body = await asyncio.to_thread(_render, certificates)
    return Response(
        body,
        media_type=PDF_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/departments/{dept}/users/{account}/certificates/{certificate}",
    operation_id="get_department_user_certificate",
    response_class=Response,
    responses={
        **_PDF_RESPONSES,
        404: {
            "description": "Not a member here (`not-found`) or no such certificate "
            "(`certificate-not-found`).",
            "content": PROBLEM_CONTENT,
        },
        410: {"description": "The certificate was revoked.", "content": PROBLEM_CONTENT},
    },
)
@raises(NotAMember, UnknownCertificate, RevokedCertificate)
async def get_department_user_certificate(
    dept: uuid.UUID,
    account: uuid.UUID,
    certificate: str,
    _: ReportViewer,
    records: RecordsService,
) -> Response:
    """One certificate of the person's transcript as a PDF (`certificate-<id>.pdf`).

    Admins and officers of the department. 404 if the person is not (or no longer) a
    member or has no such certificate here; 410 `certificate-revoked` if it was revoked.
    """
    [data] = await records.certificates(dept, account, certificate)
    return await pdf_response([data], f"certificate-{data.certificate_id}.pdf")


@router.get(
    "/departments/{dept}/users/{account}/certificates",
    operation_id="get_department_user_certificates",
    response_class=Response,
    responses={
        **_PDF_RESPONSES,
        404: {
            "description": "Not a member here (`not-found`), or no valid certificate "
            "(`no-certificates`).",
            "content": PROBLEM_CONTENT,
        },
    },
)
@raises(NotAMember, NoCertificates)
async def get_department_user_certificates(
    dept: uuid.UUID, account: uuid.UUID, _: ReportViewer, records: RecordsService
) -> Response:
    """All of the person's valid certificates as ONE PDF, a page each, newest first
    (`certificates-<account>.pdf`); revoked ones are left out.

    Always `application/pdf`, whatever `Accept` says: the same list as JSON is the
    record's `transcript`. Admins and officers of the department. 404 if the person is
    not (or no longer) a member, or has no valid certificate (`no-certificates`).
    """
    certificates = await records.certificates(dept, account)
    return await pdf_response(certificates, f"certificates-{account}.pdf")
