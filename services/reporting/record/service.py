"""Use cases of the individual record: the person, their history and their training,
and the certificates issued from their transcript.

Training is read only for a current member: a person who is not (or no longer)
in the department has no record there, whatever training is stored for them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from . import service, store_training
from .certificates import CertificateData
from .domain import HistoryEntry, UserRow
from .training_domain import (
    Completion,
    Training,
    certificate,
    newest_first,
    training,
    valid_certificates,
)


class NotAMember(Exception):
    """The person is not (or no longer) a member of the department."""


@dataclass(frozen=True)
class IndividualRecord:
    """Everything the record shows."""

    user: UserRow
    history: list[HistoryEntry]
    training: Training


async def individual_record(
    engine: AsyncEngine, department_id: uuid.UUID, account_id: uuid.UUID, *, today: date
) -> IndividualRecord | None:
    """The person's record with plans, transcript and totals; None if not a member there."""
    found = await service.user_record(engine, department_id, account_id)
    if found is None:
        return None
    user, history = found
    async with engine.connect() as conn:
        assignments = await store_training.assignments_of(conn, department_id, account_id)
        completions = await store_training.completions_of(conn, department_id, account_id)
    return IndividualRecord(user, history, training(assignments, completions, today))


async def certificates(
    engine: AsyncEngine,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    certificate_id: str | None = None,
) -> list[CertificateData]:
    """What to print: one certificate, or (``certificate_id`` None) every valid one,
    newest first (possibly none).

    Raises ``NotAMember``, and for one certificate ``UnknownCertificate`` or
    ``RevokedCertificate``.
    """
    found = await service.user_record(engine, department_id, account_id)
    if found is None:
        raise NotAMember(account_id)
    user, _ = found
    async with engine.connect() as conn:
        transcript = newest_first(
            await store_training.completions_of(conn, department_id, account_id)
        )
        department = await store_training.department_name(conn, department_id)
    chosen = (
        valid_certificates(transcript)
        if certificate_id is None
        else [certificate(transcript, certificate_id)]
    )
    return [_printed(entry, department or "the department", user.name) for entry in chosen]


def _printed(entry: Completion, department: str, person: str) -> CertificateData:
    return CertificateData(
        certificate_id=entry.certificate_id,
        department=department,
        person=person,
        course=entry.title,
        completed_on=entry.completed_on,
        hours=entry.hours,
        credits=entry.credits,
    )
