"""The users table's ``total`` on a real PostgreSQL: the counts the projection keeps per
department, role and status always equal the rows (one event at a time, whole runs at
once, repeated runs), and each view is counted as its filters allow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope, wrap
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    GroupDeleted,
    MemberAdded,
    MemberJoinedGroup,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.reporting.projection.service import project
from prodigy_users.reporting.tables import user_counts, users
from prodigy_users.reporting.users.rules import COUNT_CAP, Total, parse_view
from prodigy_users.reporting.users.service import UsersTable

from .test_projection import Bus, added

pytestmark = pytest.mark.timeout(120)


async def kept(engine: AsyncEngine, dept: uuid.UUID) -> dict[tuple[str, str], int]:
    """The department's kept counts (a count that reached zero is not kept: the table is
    the same however the events were grouped into runs)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(user_counts.c.role, user_counts.c.status, user_counts.c.members).where(
                user_counts.c.department_id == dept
            )
        )
        found = {(r.role, r.status): r.members for r in rows}
    assert all(n > 0 for n in found.values()), found
    return found


async def counted(engine: AsyncEngine, dept: uuid.UUID) -> dict[tuple[str, str], int]:
    """The same, counted from the rows."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(users.c.role, users.c.status, sa.func.count())
            .where(users.c.department_id == dept, users.c.removed_at.is_(None))
            .group_by(users.c.role, users.c.status)
        )
        return {(r[0], r[1]): r[2] for r in rows}


async def total(engine: AsyncEngine, dept: uuid.UUID, **query: Any) -> Total | None:
    """The ``total`` of the view's first page (and of a later page: the same)."""
    table = UsersTable(engine)
    view = parse_view(dept, **query)
    first = await table.page(view, limit=2)
    if first.next_cursor:
        later = await table.page(view, limit=2, cursor=first.next_cursor)
        assert later.total == first.total, "every page of a view has the same total"
    return first.total


async def test_the_kept_counts_follow_every_change_one_event_at_a_time(
    engine: AsyncEngine,
) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    admin, ana, otto, mo = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    night = uuid.uuid4()
    await bus.send(
        DepartmentCreated(department_id=dept, name="Springfield EMS"),
        added(dept, admin, "Ada Admin", "admin"),
        added(dept, ana, "Ana Lima"),
        added(dept, otto, "Otto Officer", "officer"),
        added(dept, mo, "Mo Member"),
        GroupCreated(department_id=dept, group_id=night, name="Night shift"),
        MemberJoinedGroup(department_id=dept, group_id=night, account_id=ana),
    )
    assert await kept(engine, dept) == {
        ("admin", "active"): 1,
        ("member", "active"): 2,
        ("officer", "active"): 1,
    }
    assert await total(engine, dept) == Total(4)
    assert await total(engine, dept, role=["member"]) == Total(2)

    await bus.send(
        MemberRoleChanged(
            department_id=dept, account_id=ana, role="officer", previous_role="member"
        ),
        MemberStatusChanged(department_id=dept, account_id=ana, status="inactive"),
        EmployeeIdSet(department_id=dept, account_id=ana, employee_id="E-7"),  # moves nothing
    )
    assert await kept(engine, dept) == await counted(engine, dept)
    assert await total(engine, dept, role=["officer"]) == Total(2)
    assert await total(engine, dept, role=["officer"], status=["inactive"]) == Total(1)
    assert await total(engine, dept, status=["active"]) == Total(3)

    # A walk through the view keeps the total its first page had: the cursor carries it.
    table = UsersTable(engine)
    first = await table.page(parse_view(dept), limit=2)
    assert first.total == Total(4) and first.next_cursor
    await bus.send(MemberRemoved(department_id=dept, account_id=otto))
    later = await table.page(parse_view(dept), limit=2, cursor=first.next_cursor)
    assert later.total == Total(4), "counted once per walk"
    assert await kept(engine, dept) == await counted(engine, dept)
    assert await total(engine, dept) == Total(3)
    # Removed again (redelivered as a new event): still one removal.
    await bus.send(MemberRemoved(department_id=dept, account_id=otto))
    assert await total(engine, dept) == Total(3)

    await bus.send(
        MemberRestored(
            department_id=dept,
            account_id=otto,
            name="Otto Officer",
            email="otto@example.org",
            role="member",
            status="inactive",
            employee_id=None,
            group_ids=[],
            restored_at=datetime.now(UTC),
        ),
        GroupDeleted(department_id=dept, group_id=night),  # groups move no count
    )
    assert await kept(engine, dept) == await counted(engine, dept)
    assert await total(engine, dept, status=["inactive"]) == Total(2)
    assert await total(engine, dept) == Total(4)


def _run(*payloads: Any) -> list[tuple[RawEnvelope, Any]]:
    out = []
    for p in payloads:
        body = wrap(p, producer="membership", key=str(p.department_id)).encode()
        out.append((RawEnvelope.model_validate_json(body), p))
    return out


async def test_a_whole_run_moves_the_counts_once_and_a_repeat_moves_nothing(
    engine: AsyncEngine,
) -> None:
    dept = uuid.uuid4()
    people = [uuid.uuid4() for _ in range(6)]
    run = _run(
        DepartmentCreated(department_id=dept, name="Batch Fire"),
        *(added(dept, p, f"Person {i}") for i, p in enumerate(people)),
        # Within the same run: promoted, then demoted again; another added and removed.
        MemberRoleChanged(
            department_id=dept, account_id=people[0], role="admin", previous_role="member"
        ),
        MemberRoleChanged(
            department_id=dept, account_id=people[0], role="member", previous_role="admin"
        ),
        MemberRemoved(department_id=dept, account_id=people[1]),
        MemberStatusChanged(department_id=dept, account_id=people[2], status="inactive"),
    )
    async with engine.begin() as conn:
        await project(conn, run)
    assert await kept(engine, dept) == {("member", "active"): 4, ("member", "inactive"): 1}
    # The same run again (a replay onto the same rows): the rows are as it leaves them.
    async with engine.begin() as conn:
        await project(conn, run)
    assert await kept(engine, dept) == await counted(engine, dept)


async def test_searches_and_groups_are_counted_up_to_the_cap(engine: AsyncEngine) -> None:
    dept = uuid.uuid4()
    crew = uuid.uuid4()
    many = [uuid.uuid4() for _ in range(COUNT_CAP + 5)]
    payloads: list[Any] = [
        DepartmentCreated(department_id=dept, name="Big County EMS"),
        GroupCreated(department_id=dept, group_id=crew, name="Crew"),
    ]
    for i, person in enumerate(many):
        payloads.append(
            MemberAdded(
                department_id=dept,
                account_id=person,
                name=f"Zed Person {i:04d}",
                email=f"zed{i}-{person.hex[:6]}@example.org",
                role="member",
                joined_at=datetime.now(UTC),
            )
        )
    payloads += [
        MemberJoinedGroup(department_id=dept, group_id=crew, account_id=p) for p in many[:3]
    ]
    async with engine.begin() as conn:
        await project(conn, _run(*payloads))

    assert await total(engine, dept) == Total(COUNT_CAP + 5), "kept counts: exact at any size"
    assert await total(engine, dept, q="zed person") == Total(COUNT_CAP, exact=False)
    assert await total(engine, dept, q="person 0004") == Total(1)
    assert await total(engine, dept, q="nobody here") == Total(0)
    assert await total(engine, dept, group=[str(crew)]) == Total(3)
    assert await total(engine, dept, group=[str(crew)], status=["inactive"]) == Total(0)
    # Two letters: no trigram to find the rows by, so no count rather than a full scan.
    assert await total(engine, dept, q="ze") is None
