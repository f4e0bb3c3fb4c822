"""Reporting's use cases for ``training.events.v1``: keep plans and transcripts.

Each handler is one upsert keyed by what the event is about (person and course,
person and certificate), so a redelivery, a repeat with a new ``event_id`` and a
replay from the beginning all leave the same rows.
"""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload, RawEnvelope
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted
from prodigy_users.runtime.consumer import Handler
from prodigy_users.runtime.uow import UnitOfWork

from . import store_training


async def record_assignment(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CourseAssigned
) -> None:
    """A course is on the person's plan (member yet or not: the record shows it when they are)."""
    await store_training.upsert_assignment(uow.conn, payload, envelope.occurred_at)


async def record_completion(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CourseCompleted
) -> None:
    """A completion joins the transcript, once per certificate."""
    await store_training.upsert_completion(uow.conn, payload, envelope.occurred_at)


async def record_revocation(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CertificateRevoked
) -> None:
    """A certificate is revoked: still on the transcript, counted for nothing, no PDF."""
    await store_training.add_revocation(uow.conn, payload)


TRAINING_HANDLERS: dict[type[Payload], Handler] = {
    CourseAssigned: record_assignment,
    CourseCompleted: record_completion,
    CertificateRevoked: record_revocation,
}
