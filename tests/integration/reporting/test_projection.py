"""Reporting's users table under the member lifecycle, on a real PostgreSQL: every event
goes through the real consumer path (inbox, savepoint, handler) into a migrated database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberAdded,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.reporting.consumers import HANDLERS
from prodigy_users.reporting.errors import NotAMember
from prodigy_users.reporting.record.service import IndividualRecord, Records
from prodigy_users.reporting.settings import Settings
from prodigy_users.reporting.users.api import UserPublic
from prodigy_users.reporting.users.rules import parse_view
from prodigy_users.reporting.users.service import UsersTable
from prodigy_users.runtime.consumer import Consumer

pytestmark = pytest.mark.timeout(120)


class Bus:
    """Delivers events to reporting as its consumer would (the broker is never used)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.consumer = Consumer(
            "reporting", engine, KafkaBroker("127.0.0.1:1"), Settings(), HANDLERS
        )
        self.by_type = {p.TYPE: (p, h) for p, h in HANDLERS.items()}

    async def send(self, *payloads: Payload) -> list[bytes]:
        bodies = []
        for payload in payloads:
            key = str(payload.model_dump()["department_id"])
            body = wrap(payload, producer="membership", key=key).encode()
            await self.redeliver(body)
            bodies.append(body)
        return bodies

    async def redeliver(self, body: bytes) -> None:
        await self.consumer.process(MEMBERSHIP_EVENTS, body, None, self.by_type)


def _now() -> datetime:
    return datetime.now(UTC)


async def table(engine: AsyncEngine, dept: uuid.UUID) -> dict[uuid.UUID, UserPublic]:
    """The department's users table as clients get it (groups named)."""
    page = await UsersTable(engine).page(parse_view(dept), limit=500)
    return {row.account_id: UserPublic.of(row, page.groups.refs(row.groups)) for row in page.items}


async def role_of(engine: AsyncEngine, dept: uuid.UUID, account: uuid.UUID) -> str | None:
    return await UsersTable(engine).role_of(dept, account)


async def record(engine: AsyncEngine, dept: uuid.UUID, account: uuid.UUID) -> IndividualRecord:
    return await Records(engine).individual_record(dept, account, today=_now().date())


def added(dept: uuid.UUID, account: uuid.UUID, name: str, role: str = "member") -> MemberAdded:
    return MemberAdded(
        department_id=dept,
        account_id=account,
        name=name,
        email=f"{name.split()[0].lower()}-{account.hex[:6]}@example.org",
        role=role,
        joined_at=_now(),
    )


async def test_the_whole_lifecycle_shows_in_the_users_table(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    admin, ana, otto = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    night, day = uuid.uuid4(), uuid.uuid4()
    await bus.send(
        DepartmentCreated(department_id=dept, name="Springfield EMS"),
        added(dept, admin, "Ada Admin", "admin"),
        added(dept, ana, "Ana Lima"),
        added(dept, otto, "Otto Officer", "officer"),
        GroupCreated(department_id=dept, group_id=night, name="Night shift"),
        GroupCreated(department_id=dept, group_id=day, name="Day shift"),
        MemberJoinedGroup(department_id=dept, group_id=night, account_id=ana),
        MemberJoinedGroup(department_id=dept, group_id=day, account_id=ana),
        # Joining twice (two events) keeps one entry.
        MemberJoinedGroup(department_id=dept, group_id=night, account_id=ana),
        MemberJoinedGroup(department_id=dept, group_id=day, account_id=admin),
        GroupRenamed(department_id=dept, group_id=night, name="Nights"),
        MemberRoleChanged(
            department_id=dept, account_id=ana, role="officer", previous_role="member"
        ),
        MemberStatusChanged(department_id=dept, account_id=ana, status="inactive"),
        EmployeeIdSet(department_id=dept, account_id=ana, employee_id="E-7"),
    )
    rows = await table(engine, dept)
    assert set(rows) == {admin, ana, otto}
    row = rows[ana]
    assert (row.role, row.status, row.employee_id) == ("officer", "inactive", "E-7")
    assert [(g.group_id, g.name) for g in row.groups] == [(day, "Day shift"), (night, "Nights")]
    assert await role_of(engine, dept, ana) == "officer"

    await bus.send(
        MemberLeftGroup(department_id=dept, group_id=day, account_id=ana),
        EmployeeIdSet(department_id=dept, account_id=ana, employee_id=None),
    )
    row = (await table(engine, dept))[ana]
    assert [g.group_id for g in row.groups] == [night]
    assert row.employee_id is None

    # A removed officer disappears everywhere and loses the reports.
    await bus.send(MemberRemoved(department_id=dept, account_id=otto))
    assert otto not in await table(engine, dept)
    with pytest.raises(NotAMember):
        await record(engine, dept, otto)
    assert await role_of(engine, dept, otto) is None

    # Deleting a group takes it out of every row.
    await bus.send(GroupDeleted(department_id=dept, group_id=day))
    assert (await table(engine, dept))[admin].groups == []


async def test_removed_people_come_back_with_what_the_restore_says(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    admin, nia = uuid.uuid4(), uuid.uuid4()
    crew = uuid.uuid4()
    first = added(dept, nia, "Nia New")
    await bus.send(
        DepartmentCreated(department_id=dept, name="Shelbyville Fire"),
        added(dept, admin, "Ada Admin", "admin"),
        first,
        GroupCreated(department_id=dept, group_id=crew, name="Crew"),
        MemberJoinedGroup(department_id=dept, group_id=crew, account_id=nia),
        EmployeeIdSet(department_id=dept, account_id=nia, employee_id="F-1"),
        MemberRoleChanged(department_id=dept, account_id=nia, role="admin", previous_role="member"),
        MemberRemoved(department_id=dept, account_id=nia),
    )
    assert nia not in await table(engine, dept)
    assert await role_of(engine, dept, nia) is None, "a removed admin has no access"

    await bus.send(
        MemberRestored(
            department_id=dept,
            account_id=nia,
            name="Nia Newer",
            email=first.email,
            role="member",
            status="active",
            employee_id="F-1",
            group_ids=[crew],
            restored_at=_now(),
        )
    )
    row = (await table(engine, dept))[nia]
    assert (row.name, row.role, row.status, row.employee_id) == (
        "Nia Newer",
        "member",
        "active",
        "F-1",
    )
    assert [(g.group_id, g.name) for g in row.groups] == [(crew, "Crew")]
    assert row.joined_at == first.joined_at, "the membership keeps its first join date"
    found = await record(engine, dept, nia)
    events = [entry.event for entry in found.history]
    assert events == [
        "joined",
        "joined_group",
        "employee_id_set",
        "role_changed",
        "removed",
        "restored",
    ]


async def test_redelivered_events_change_nothing(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    ana, group = uuid.uuid4(), uuid.uuid4()
    bodies = await bus.send(
        DepartmentCreated(department_id=dept, name="Ogdenville"),
        added(dept, ana, "Ana Lima"),
        GroupCreated(department_id=dept, group_id=group, name="Crew"),
        MemberJoinedGroup(department_id=dept, group_id=group, account_id=ana),
        MemberLeftGroup(department_id=dept, group_id=group, account_id=ana),
    )
    # The join again, redelivered after the leave: the inbox knows it, the row stays.
    await bus.redeliver(bodies[3])
    for body in bodies:
        await bus.redeliver(body)
    row = (await table(engine, dept))[ana]
    assert row.groups == []
    found = await record(engine, dept, ana)
    assert [e.event for e in found.history] == ["joined", "joined_group", "left_group"]


async def test_one_department_never_sees_another(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    a, b = uuid.uuid4(), uuid.uuid4()
    person = uuid.uuid4()
    await bus.send(
        DepartmentCreated(department_id=a, name="A"),
        DepartmentCreated(department_id=b, name="B"),
        added(a, person, "Pat Both"),
        added(b, person, "Pat Both", "admin"),
        MemberRemoved(department_id=a, account_id=person),
    )
    assert person not in await table(engine, a)
    assert person in await table(engine, b)
    assert await role_of(engine, b, person) == "admin"
