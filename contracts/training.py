"""Events about people's training, written by the training platform (not by our services).

The training platform publishes them on ``training.events.v1``; reporting reads
them into each person's training plan and transcript. They are keyed by
``account_id``: everything about one person's training (assignments,
completions, revocations, in every department) is in one partition, so a
revocation never overtakes the completion it revokes. There is no order
against membership events (another topic): a person's training may arrive
before the event that makes them a member, and is kept until it does.

Course and certificate ids are the training platform's own opaque ids: 1-128
characters, letters, digits and ``. _ : -``, starting with a letter or digit,
so they are safe in a URL path as they are.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from .envelope import Payload

# Opaque ids of the training platform, safe as a URL path segment without escaping.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

_DEPARTMENT = Field(
    description="The department whose training this is (the person's membership there).",
    examples=["9b2f4c1a-8c53-4c71-9e4b-2d0b1f7d5e6a"],
)
_ACCOUNT = Field(
    description="The person's global account id (also the partition key).",
    examples=["3d6f0f1e-5a4b-4c9e-8f1a-7b2c3d4e5f60"],
)
_COURSE = Field(
    description="The training platform's id of the course.",
    pattern=ID_PATTERN,
    examples=["ems-cpr-2026"],
)
_TITLE = Field(
    min_length=1,
    max_length=300,
    description="The course's title as the person sees it.",
    examples=["CPR and AED for Healthcare Providers"],
)
_CERTIFICATE = Field(
    description=(
        "The training platform's id of the certificate; one completion, one certificate. "
        "A completion sent again with the same id is the same completion (it is not counted "
        "twice)."
    ),
    pattern=ID_PATTERN,
    examples=["cert-2026-000417"],
)


class CourseAssigned(Payload):
    """Event: a course was put on a person's training plan in a department.

    Sent again for the same person and course, it replaces the assignment (new
    title, plan or due date). The plan entry counts as completed once a
    completion of the course on or after the day it was assigned arrives.
    """

    TYPE: ClassVar[str] = "training.course_assigned"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    course_id: str = _COURSE
    title: str = _TITLE
    plan: str | None = Field(
        default=None,
        max_length=300,
        description="Name of the training plan the course belongs to, if any.",
        examples=["2026 recertification"],
    )
    due_on: date | None = Field(
        default=None,
        description="The day the course is due, if there is a deadline.",
        examples=["2026-12-31"],
    )
    assigned_at: datetime = Field(
        description="When the course was assigned (UTC).", examples=["2026-11-02T09:00:00Z"]
    )


class CourseCompleted(Payload):
    """Event: a person completed a course and was issued a certificate.

    Each certificate is one entry of the person's transcript; its hours and
    credits count towards their totals until the certificate is revoked.
    """

    TYPE: ClassVar[str] = "training.course_completed"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    course_id: str = _COURSE
    title: str = _TITLE
    completed_on: date = Field(
        description="The day the course was completed.", examples=["2026-11-20"]
    )
    hours: float = Field(
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="Contact hours the course is worth.",
        examples=[4.5],
    )
    credits: float = Field(
        default=0,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="Continuing-education credits the course is worth (0 when none).",
        examples=[0.5],
    )
    certificate_id: str = _CERTIFICATE


class CertificateRevoked(Payload):
    """Event: a certificate was revoked (issued in error, or withdrawn).

    The transcript keeps the completion, marked revoked; it no longer counts
    towards the totals or the training plan, and its PDF is no longer issued.
    """

    TYPE: ClassVar[str] = "training.certificate_revoked"

    department_id: uuid.UUID = _DEPARTMENT
    account_id: uuid.UUID = _ACCOUNT
    certificate_id: str = _CERTIFICATE
    reason: str = Field(
        min_length=1,
        max_length=1000,
        description="Why it was revoked, as the training platform words it.",
        examples=["Issued in error: the practical assessment was not passed."],
    )
    revoked_at: datetime = Field(
        description="When it was revoked (UTC).", examples=["2026-11-24T16:30:00Z"]
    )
