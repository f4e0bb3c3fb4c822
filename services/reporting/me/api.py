"""The signed-in person's own records (``/v1/me/...``): the record feature's data, for
the person it is about, in every department they belong or belonged to.

A removal hides the person from the department's admins (their record there answers
404), never from themselves: their training and history stay theirs for life.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from prodigy_users.runtime.auth import CurrentPrincipal
from prodigy_users.runtime.openapi import raises

from ..deps import RecordsService
from ..errors import RevokedCertificate, UnknownCertificate
from ..record.api import (
    PDF_MEDIA_TYPE,
    TrainingTotalsPublic,
    UserRecord,
    pdf_response,
    user_record,
)
from ..record.rules import combined_totals
from ..record.service import OwnRecord

router = APIRouter(prefix="/v1/me", tags=["me"])


class MyDepartmentRecord(UserRecord):
    """The person's record in one department, as its admins see it while they are a
    member, with the department's name and, after a removal, when it happened."""

    department_name: str | None = Field(
        default=None,
        description="The department's name (absent in the moment before reporting hears of it).",
        examples=["Springfield EMS"],
    )
    member: bool = Field(description="True while the person is a member; false once removed.")
    removed_at: datetime | None = Field(
        default=None, description="When the person was removed (UTC), if they were."
    )


class MyRecord(BaseModel):
    """Everything reporting holds about the signed-in person's training and memberships."""

    account_id: uuid.UUID
    departments: list[MyDepartmentRecord] = Field(
        description="Every department the person belongs or belonged to, by name."
    )
    totals: TrainingTotalsPublic = Field(
        description="Hours, credits and valid certificates of every department together."
    )


def _department(own: OwnRecord) -> MyDepartmentRecord:
    record = user_record(own.record)
    return MyDepartmentRecord(
        **record.model_dump(),
        department_name=own.department_name,
        member=own.record.user.removed_at is None,
        removed_at=own.record.user.removed_at,
    )


@router.get("/record", operation_id="get_my_record", response_model=MyRecord)
async def get_my_record(principal: CurrentPrincipal, records: RecordsService) -> MyRecord:
    """The caller's own record in every department they belong or belonged to:
    memberships and their history, training plans, transcript, hours and credits.

    Any signed-in person; a department that removed them still shows (with
    `member: false` and `removed_at`). No departments yet: an empty list.
    """
    found = await records.own_records(principal.account_id, today=datetime.now(UTC).date())
    return MyRecord(
        account_id=principal.account_id,
        departments=[_department(own) for own in found],
        totals=TrainingTotalsPublic.of(
            combined_totals(own.record.training.totals for own in found)
        ),
    )


@router.get(
    "/certificates/{certificate}",
    operation_id="get_my_certificate",
    response_class=Response,
    responses={
        200: {
            "description": "The PDF, with a file name in `Content-Disposition`.",
            "content": {PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
@raises(UnknownCertificate, RevokedCertificate)
async def get_my_certificate(
    certificate: str, principal: CurrentPrincipal, records: RecordsService
) -> Response:
    """One of the caller's certificates as a PDF (`certificate-<id>.pdf`), from whichever
    department they earned it in, whether or not they are still a member there.

    404 `certificate-not-found` if none of their transcripts has it; 410
    `certificate-revoked` if it was revoked.
    """
    data = await records.own_certificate(principal.account_id, certificate)
    return await pdf_response([data], f"certificate-{data.certificate_id}.pdf")
