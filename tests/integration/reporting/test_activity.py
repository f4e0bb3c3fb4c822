"""The activity log on a real PostgreSQL, through the real consumer path: one row per
change with its actor, a redelivery and a batch give the same rows, names come from
the department's rows when read (a name fixed later shows on past changes), pages and
filters, and the record's history shares the actors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
)
from prodigy_users.reporting.activity.rules import parse_filters
from prodigy_users.reporting.activity.service import ActivityLog
from prodigy_users.reporting.projection.service import project
from prodigy_users.reporting.tables import activity, users

from .test_projection import Bus, record

pytestmark = pytest.mark.timeout(120)


async def test_changes_are_logged_once_with_who_made_them(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept, admin, sam = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)

    def added(account: uuid.UUID, name: str, **extra: Any) -> MemberAdded:
        return MemberAdded(
            department_id=dept,
            account_id=account,
            name=name,
            email=f"{uuid.uuid4().hex[:8]}@example.org",
            role="member",
            joined_at=now,
            **extra,
        )

    bodies = await bus.send(
        DepartmentCreated(department_id=dept, name="North"),
        added(admin, "Ada Admin", via="operator"),
        added(sam, "Sam Rivera", added_by=admin),
        MemberRoleChanged(
            department_id=dept,
            account_id=sam,
            role="officer",
            previous_role="member",
            changed_by=admin,
        ),
        MemberRemoved(department_id=dept, account_id=sam, removed_by=admin),
    )
    await bus.redeliver(bodies[-1])  # a redelivery records nothing twice
    log = ActivityLog(engine)
    page = await log.page(parse_filters(dept), limit=10)
    assert [(e.action, e.person_name, e.by.kind, e.by.label) for e in page.items] == [
        ("removed", "Sam Rivera", "admin", "Ada Admin"),
        ("role_changed", "Sam Rivera", "admin", "Ada Admin"),
        ("joined", "Sam Rivera", "admin", "Ada Admin"),
        ("joined", "Ada Admin", "operator", "an operator"),
    ]
    # The same events folded again as one run (a replay's batch) add nothing.
    raw = [RawEnvelope.model_validate_json(b) for b in bodies]
    payloads = [bus.by_type[r.type][0].model_validate(r.data) for r in raw]
    async with engine.begin() as conn:
        await project(conn, list(zip(raw, payloads, strict=True)))
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(activity.c.department_id == dept)
        )
    assert count == 4

    # A name fixed later shows on every past change.
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(users)
            .where(users.c.department_id == dept, users.c.account_id == admin)
            .values(name="Ada Lovelace")
        )
    page = await log.page(parse_filters(dept, action=["role_changed"]), limit=10)
    assert [e.by.label for e in page.items] == ["Ada Lovelace"]

    # Pages of one, and the filters.
    first = await log.page(parse_filters(dept), limit=1)
    assert first.next_cursor is not None
    second = await log.page(parse_filters(dept), limit=1, cursor=first.next_cursor)
    assert [e.action for e in second.items] == ["role_changed"]
    mine = await log.page(parse_filters(dept, person=str(admin)), limit=10)
    assert [e.person_id for e in mine.items] == [admin]
    tomorrow = str((now + timedelta(days=1)).date())
    assert (await log.page(parse_filters(dept, since=tomorrow), limit=10)).items == []


async def test_the_record_history_carries_the_actor(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept, admin, pat = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await bus.send(
        DepartmentCreated(department_id=dept, name="South"),
        MemberAdded(
            department_id=dept,
            account_id=admin,
            name="Ada Admin",
            email="ada@example.org",
            role="admin",
            joined_at=now,
            via="operator",
        ),
        MemberAdded(
            department_id=dept,
            account_id=pat,
            name="Pat Lee",
            email="pat@example.org",
            role="member",
            joined_at=now,
            added_by=admin,
            via="invitation",
        ),
        MemberRoleChanged(
            department_id=dept,
            account_id=pat,
            role="officer",
            previous_role="member",
            changed_by=admin,
        ),
    )
    found = await record(engine, dept, pat)
    assert [(h.event, h.actor_kind, h.actor_id) for h in found.history] == [
        ("joined", "self", pat),
        ("role_changed", "admin", admin),
    ]
    assert found.actor_names == {pat: "Pat Lee", admin: "Ada Admin"}
