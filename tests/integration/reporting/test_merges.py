"""An operator's merge of two accounts in reporting's read model, on a real PostgreSQL
and through the real consumer path: membership's ``member_merged`` leaves one row with
the history of both, identity's ``account_merged`` moves the training (a course on
both plans: the later assignment; completed under both: both completions), and a
training event that still names the merged account is the kept one's. The two topics
have no order with each other: either may be read first, with the same result."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.identity import AccountMerged
from prodigy_users.contracts.membership import DepartmentCreated, MemberMerged
from prodigy_users.contracts.topics import IDENTITY_EVENTS, TRAINING_EVENTS
from prodigy_users.contracts.training import CourseAssigned, CourseCompleted
from tests.integration.reporting.test_projection import Bus, added, record, table

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


class Everything(Bus):
    """Delivers identity's and the training platform's events too."""

    async def identity(self, payload: AccountMerged) -> None:
        body = wrap(payload, producer="identity", key=str(payload.merged_account_id)).encode()
        await self.consumer.process(IDENTITY_EVENTS, body, None, self.by_type)

    async def training(self, payload: Payload, at: datetime) -> None:
        account = str(payload.model_dump()["account_id"])
        envelope = wrap(payload, producer="training-platform", key=account)
        body = envelope.model_copy(update={"occurred_at": at}).encode()
        await self.consumer.process(TRAINING_EVENTS, body, None, self.by_type)


def _assigned(dept: uuid.UUID, account: uuid.UUID, course: str, title: str) -> CourseAssigned:
    return CourseAssigned(
        department_id=dept, account_id=account, course_id=course, title=title, assigned_at=T0
    )


def _completed(dept: uuid.UUID, account: uuid.UUID, cert: str) -> CourseCompleted:
    return CourseCompleted(
        department_id=dept,
        account_id=account,
        course_id="cpr",
        title="CPR",
        completed_on=date(2026, 5, 1),
        hours=4,
        credits=0,
        certificate_id=cert,
    )


def _merged(dept: uuid.UUID, keep: uuid.UUID, drop: uuid.UUID) -> MemberMerged:
    return MemberMerged(
        department_id=dept,
        account_id=keep,
        merged_account_id=drop,
        name="Mara Keep",
        email="mara@example.org",
        role="officer",
        status="active",
        joined_at=T0 - timedelta(days=9),
        merged_at=T0 + timedelta(hours=2),
    )


@pytest.mark.parametrize("identity_first", [False, True])
async def test_a_merge_leaves_one_row_with_both_trainings(
    engine: AsyncEngine, identity_first: bool
) -> None:
    bus = Everything(engine)
    dept, keep, drop = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await bus.send(
        DepartmentCreated(department_id=dept, name="Merges"),
        added(dept, keep, "Mara Keep"),
        added(dept, drop, "Mara Drop"),
    )
    await bus.training(_assigned(dept, keep, "acls", "ACLS (kept's)"), T0)
    await bus.training(_assigned(dept, drop, "acls", "ACLS (later)"), T0 + timedelta(hours=1))
    await bus.training(_completed(dept, keep, f"k-{keep.hex[:6]}"), T0)
    await bus.training(_completed(dept, drop, f"d-{drop.hex[:6]}"), T0)

    merged = AccountMerged(kept_account_id=keep, merged_account_id=drop, merged_at=T0)
    if identity_first:
        await bus.identity(merged)
        await bus.send(_merged(dept, keep, drop))
    else:
        await bus.send(_merged(dept, keep, drop))
        await bus.identity(merged)
    # Late: the training platform still names the merged account.
    await bus.training(_completed(dept, drop, f"late-{drop.hex[:6]}"), T0 + timedelta(hours=3))

    rows = await table(engine, dept)
    assert set(rows) == {keep}
    assert rows[keep].role == "officer"
    mine = await record(engine, dept, keep)
    assert {c.certificate_id for c in mine.training.transcript} == {
        f"k-{keep.hex[:6]}",
        f"d-{drop.hex[:6]}",
        f"late-{drop.hex[:6]}",
    }
    [plan] = mine.training.plans
    assert plan.assignment.title == "ACLS (later)"
    events = [h.event for h in mine.history]
    assert events.count("joined") == 2 and events[-1] == "merged"

    # Delivered again (a redelivery with new ids, or a replay): nothing changes.
    await bus.identity(merged)
    again = await record(engine, dept, keep)
    assert {c.certificate_id for c in again.training.transcript} == {
        c.certificate_id for c in mine.training.transcript
    }
    assert set(await table(engine, dept)) == {keep}
