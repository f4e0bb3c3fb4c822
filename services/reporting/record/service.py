"""The individual record's use cases: the person, their history and their training, the
certificates printed from their transcript; and keeping training from its events.

Training is read only for a current member: a person who is not (or no longer)
in the department has no record there, whatever training is stored for them. The
person's row and the department's name are the users table's (``users.store``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted
from prodigy_users.runtime.uow import UnitOfWork

from ..activity import store as activity_store
from ..errors import (
    OWN_UNKNOWN_CERTIFICATE,
    NoCertificates,
    NotAMember,
    RevokedCertificate,
    UnknownCertificate,
)
from ..merges import as_kept
from ..rules import GroupRef, UserRow, group_refs
from ..users import store as users_store
from . import store
from .certificates import CertificateData
from .rules import (
    Completion,
    HistoryEntry,
    Training,
    certificate,
    newest_first,
    training,
    valid_certificates,
)


@dataclass(frozen=True)
class IndividualRecord:
    """Everything the record shows."""

    user: UserRow
    groups: tuple[GroupRef, ...]  # the row's groups, named
    history: list[HistoryEntry]
    training: Training
    # The names of the accounts that made the history's changes.
    actor_names: Mapping[uuid.UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnRecord:
    """A person's own record in one department they belong or belonged to: the same as
    the admins' record, and the department's name; ``user.removed_at`` is set if they
    were removed."""

    record: IndividualRecord
    department_name: str | None


class Records:
    """The individual record's use cases on reporting's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def individual_record(
        self, department_id: uuid.UUID, account_id: uuid.UUID, *, today: date
    ) -> IndividualRecord:
        """The person's record with history, plans, transcript and totals
        (``NotAMember`` if they are not, or no longer, a member there)."""
        async with self.engine.connect() as conn:
            user = await _member(conn, department_id, account_id)
            return await _record_of(conn, user, today)

    async def own_records(self, account_id: uuid.UUID, *, today: date) -> list[OwnRecord]:
        """The person's record in every department they are or were a member of.

        Unlike the admins' record, a removal does not hide it: the person's training and
        history stay theirs (the department's admins lose access, the person does not).
        """
        async with self.engine.connect() as conn:
            memberships = await store.memberships_of(conn, account_id)
            found = []
            for user, department_name in memberships:
                found.append(OwnRecord(await _record_of(conn, user, today), department_name))
        return found

    async def own_certificate(self, account_id: uuid.UUID, certificate_id: str) -> CertificateData:
        """One certificate of the person's, from whichever department they earned it in
        (removed from it or not): ``UnknownCertificate`` or ``RevokedCertificate``."""
        revoked = False
        async with self.engine.connect() as conn:
            for user, department_name in await store.memberships_of(conn, account_id):
                transcript = await store.completions_of(conn, user.department_id, account_id)
                try:
                    entry = certificate(transcript, certificate_id)
                except RevokedCertificate:
                    revoked = True
                    continue
                except UnknownCertificate:
                    continue
                return _printed(entry, department_name or "the department", user.name)
        if revoked:
            raise RevokedCertificate()
        raise UnknownCertificate(OWN_UNKNOWN_CERTIFICATE)

    async def certificates(
        self,
        department_id: uuid.UUID,
        account_id: uuid.UUID,
        certificate_id: str | None = None,
    ) -> list[CertificateData]:
        """What to print: one certificate, or (``certificate_id`` None) every valid one,
        newest first.

        Raises ``NotAMember``; for one certificate ``UnknownCertificate`` or
        ``RevokedCertificate``; for all of them ``NoCertificates`` when none is valid.
        """
        async with self.engine.connect() as conn:
            user = await _member(conn, department_id, account_id)
            transcript = newest_first(await store.completions_of(conn, department_id, account_id))
            department = await users_store.department_name(conn, department_id)
        if certificate_id is None:
            chosen = valid_certificates(transcript)
            if not chosen:
                raise NoCertificates()
        else:
            chosen = [certificate(transcript, certificate_id)]
        return [_printed(entry, department or "the department", user.name) for entry in chosen]


async def _record_of(conn: AsyncConnection, user: UserRow, today: date) -> IndividualRecord:
    department_id, account_id = user.department_id, user.account_id
    names = await users_store.group_names(conn, department_id, user.groups)
    history = await store.history_of(conn, department_id, account_id)
    actors = {e.actor_id for e in history if e.actor_id is not None}
    actor_names = await activity_store.names(conn, department_id, actors)
    assignments = await store.assignments_of(conn, department_id, account_id)
    completions = await store.completions_of(conn, department_id, account_id)
    return IndividualRecord(
        user,
        group_refs(user.groups, names),
        history,
        training(assignments, completions, today),
        actor_names,
    )


async def _member(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> UserRow:
    user = await users_store.user(conn, department_id, account_id)
    if user is None:
        raise NotAMember()
    return user


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


# -- training.events.v1 ---------------------------------------------------------------
#
# Each handler is one upsert keyed by what the event is about (person and course,
# person and certificate), so a redelivery, a repeat with a new ``event_id`` and a
# replay from the beginning all leave the same rows. An event naming an account an
# operator merged into another is the kept account's (``merges``).


async def record_assignment(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CourseAssigned
) -> None:
    """A course is on the person's plan (member yet or not: the record shows it when they are)."""
    await store.upsert_assignment(uow.conn, await as_kept(uow.conn, payload), envelope.occurred_at)


async def record_completion(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CourseCompleted
) -> None:
    """A completion joins the transcript, once per certificate."""
    await store.upsert_completion(uow.conn, await as_kept(uow.conn, payload), envelope.occurred_at)


async def record_revocation(
    uow: UnitOfWork, envelope: RawEnvelope, payload: CertificateRevoked
) -> None:
    """A certificate is revoked: still on the transcript, counted for nothing, no PDF."""
    await store.add_revocation(uow.conn, await as_kept(uow.conn, payload))
