"""An operator's merge of two accounts in membership (``identity.account_merged``), on a
real PostgreSQL through membership's consumer: where both accounts were members the
current membership stays with the kept account's employee ID and both accounts'
groups, where only the merged one was its membership moves whole (a removed one stays
removed), every address of the merged account finds the kept one, one
``member_merged`` per department, and a redelivery changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from prodigy_users.contracts.identity import AccountMerged
from prodigy_users.contracts.membership import MemberMerged
from prodigy_users.membership.tables import accounts, group_members, memberships

from .conftest import Department, Membership

pytestmark = pytest.mark.timeout(90)


async def test_memberships_groups_and_addresses_follow_the_merge(membership: Membership) -> None:
    m = membership
    both, only_drop, removed = await m.department(), await m.department(), await m.department()
    keep = await m.member(both, name="Mara Keep")
    drop = await m.member(both, name="Mara Drop")
    drop_email = await m.email_of(both, drop)
    await m.use_cases.lifecycle.change(both.id, drop, both.admin_id, employee_id="E-DROP")
    await m.use_cases.lifecycle.change(both.id, keep, both.admin_id, employee_id="E-KEEP")
    night = await m.use_cases.groups.create(both.id, "Night")
    day = await m.use_cases.groups.create(both.id, "Day")
    await m.use_cases.groups.add_member(both.id, night.id, drop)
    await m.use_cases.groups.add_member(both.id, day.id, keep)
    # Only DROP is in the other two; in the last it was removed.
    await _join(m, only_drop, drop, role="officer")
    await _join(m, removed, drop)
    await m.use_cases.lifecycle.remove(removed.id, drop, removed.admin_id)

    merged = AccountMerged(
        kept_account_id=keep, merged_account_id=drop, merged_at=datetime.now(UTC)
    )
    body = await m.deliver(merged)

    rows = {
        (r.department_id, r.account_id): r
        for r in await m.rows(
            sa.select(memberships).where(memberships.c.account_id.in_([keep, drop]))
        )
    }
    assert set(rows) == {(both.id, keep), (only_drop.id, keep), (removed.id, keep)}
    assert rows[(both.id, keep)].employee_id == "E-KEEP"
    assert rows[(only_drop.id, keep)].role == "officer"
    assert rows[(removed.id, keep)].removed_at is not None
    groups = {
        r.group_id
        for r in await m.rows(
            sa.select(group_members).where(
                group_members.c.department_id == both.id,
                group_members.c.account_id.in_([keep, drop]),
            )
        )
    }
    assert groups == {night.id, day.id}
    assert not await m.rows(sa.select(group_members).where(group_members.c.account_id == drop))
    [event] = await m.events(both.id, MemberMerged)
    assert (event.account_id, event.merged_account_id) == (keep, drop)
    assert set(event.group_ids) == {night.id, day.id} and event.employee_id == "E-KEEP"
    [gone] = await m.events(removed.id, MemberMerged)
    assert gone.removed
    # DROP's login email finds KEEP: inviting it where KEEP is a member answers so.
    [again] = await m.use_cases.invitations.invite(both.id, drop_email, None, both.admin)
    assert again.outcome == "already_member", again
    assert not await m.rows(sa.select(accounts).where(accounts.c.account_id == drop))

    # Redelivered: nothing more.
    await m.redeliver(merged, body)
    await m.deliver(merged)  # the same merge under a new event id: nothing of DROP is left
    for dept in (both, only_drop, removed):
        assert len(await m.events(dept.id, MemberMerged)) == 1


async def _join(m: Membership, dept: Department, account: uuid.UUID, role: str = "member") -> None:
    """Put an existing account in a department directly (as an accepted invitation does)."""
    async with m.engine.begin() as conn:
        await conn.execute(
            sa.insert(memberships).values(
                department_id=dept.id,
                account_id=account,
                name="Mara Drop",
                email="drop@example.org",
                role=role,
                joined_at=datetime.now(UTC),
            )
        )
