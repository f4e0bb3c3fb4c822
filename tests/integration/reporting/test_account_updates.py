"""Accounts' changed names and login emails (identity's ``account_updated``) in reporting's
read model, on a real PostgreSQL and through the real consumer path: every row of the
account follows, whichever order the two topics are read in, and an older change read
late never undoes a newer one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.identity import AccountUpdated, Change
from prodigy_users.contracts.membership import DepartmentCreated, MemberRemoved, MemberRestored
from prodigy_users.contracts.topics import IDENTITY_EVENTS
from tests.integration.reporting.test_projection import Bus, added, table

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


class Accounts(Bus):
    """Delivers identity's events too."""

    async def account(self, payload: AccountUpdated) -> None:
        body = wrap(payload, producer="identity", key=str(payload.account_id)).encode()
        await self.consumer.process(IDENTITY_EVENTS, body, None, self.by_type)


def renamed(account: uuid.UUID, old: str, new: str, at: datetime) -> AccountUpdated:
    return AccountUpdated(account_id=account, name=Change(old=old, new=new), occurred_at=at)


async def test_a_rename_shows_in_every_department_removed_rows_too(engine: AsyncEngine) -> None:
    bus = Accounts(engine)
    one, two, three = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sam, other = uuid.uuid4(), uuid.uuid4()
    await bus.send(
        DepartmentCreated(department_id=one, name="One"),
        DepartmentCreated(department_id=two, name="Two"),
        DepartmentCreated(department_id=three, name="Three"),
        added(one, sam, "Sam Rivrea"),
        added(two, sam, "Sam Rivrea"),
        added(three, sam, "Sam Rivrea"),
        added(one, other, "Zed Other"),
        MemberRemoved(department_id=three, account_id=sam),
    )
    await bus.account(renamed(sam, "Sam Rivrea", "Sam Rivera", T0))
    for dept in (one, two):
        assert (await table(engine, dept))[sam].name == "Sam Rivera"
    assert (await table(engine, one))[other].name == "Zed Other", "only that account"

    # Restored in three later: the row comes back with the new name.
    await bus.send(
        MemberRestored(
            department_id=three,
            account_id=sam,
            name="Sam Rivrea",
            email="sam@example.org",
            role="member",
            status="active",
            restored_at=T0,
            via="invitation",
        )
    )
    assert (await table(engine, three))[sam].name == "Sam Rivera"


async def test_a_member_added_read_after_the_rename_keeps_the_new_name(
    engine: AsyncEngine,
) -> None:
    # A replay may read identity's topic before membership's: the rename arrives first.
    bus = Accounts(engine)
    dept, ana = uuid.uuid4(), uuid.uuid4()
    await bus.account(renamed(ana, "Ana Lyma", "Ana Lima", T0))
    await bus.account(
        AccountUpdated(
            account_id=ana,
            email=Change(old="old@example.org", new="ana.lima@example.org"),
            occurred_at=T0 + timedelta(seconds=1),
        )
    )
    await bus.send(DepartmentCreated(department_id=dept, name="Late"), added(dept, ana, "Ana Lyma"))
    row = (await table(engine, dept))[ana]
    assert (row.name, row.email) == ("Ana Lima", "ana.lima@example.org")


async def test_an_older_change_read_late_does_not_undo_a_newer_one(engine: AsyncEngine) -> None:
    bus = Accounts(engine)
    dept, bo = uuid.uuid4(), uuid.uuid4()
    await bus.send(DepartmentCreated(department_id=dept, name="Order"), added(dept, bo, "Bo A"))
    await bus.account(renamed(bo, "Bo B", "Bo C", T0 + timedelta(minutes=2)))
    await bus.account(renamed(bo, "Bo A", "Bo B", T0 + timedelta(minutes=1)))
    assert (await table(engine, dept))[bo].name == "Bo C"
    # A membership event afterwards still shows the latest.
    await bus.send(added(dept, uuid.uuid4(), "Someone Else"))
    assert (await table(engine, dept))[bo].name == "Bo C"
