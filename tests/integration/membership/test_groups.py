"""Groups: names unique whatever their case and spaces, renaming, who is in them, and
deleting a group its members are in."""

from __future__ import annotations

import uuid

import pytest

from prodigy_users.contracts.membership import (
    GroupCreated,
    GroupDeleted,
    GroupRenamed,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRemoved,
)
from prodigy_users.membership.errors import GroupNameTaken, GroupNotFound, MemberNotFound

from .conftest import Membership

pytestmark = pytest.mark.timeout(60)


async def test_group_names_are_one_per_department_whatever_case_and_spaces(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    groups = m.use_cases.groups

    night = await groups.create(dept.id, "Night shift")
    assert (night.name, night.member_count) == ("Night shift", 0)
    [made] = await m.events(dept.id, GroupCreated)
    assert (made.group_id, made.name) == (night.id, "Night shift")

    for same in ("night shift", "  NIGHT   Shift ", "Night\tshift"):
        with pytest.raises(GroupNameTaken) as taken:
            await groups.create(dept.id, same)
        assert taken.value.errors == [
            {"field": "name", "message": "already used in this department"}
        ]
    day = await groups.create(dept.id, "Day shift")
    with pytest.raises(GroupNameTaken):
        await groups.rename(dept.id, day.id, "NIGHT SHIFT")
    assert len(await m.events(dept.id, GroupCreated)) == 2
    assert await m.events(dept.id, GroupRenamed) == []

    # A group may take its own name in another case; the name shows as given.
    renamed = await groups.rename(dept.id, day.id, "DAY Shift")
    assert (renamed.id, renamed.name) == (day.id, "DAY Shift")
    [event] = await m.events(dept.id, GroupRenamed)
    assert (event.group_id, event.name) == (day.id, "DAY Shift")
    assert [g.name for g in await groups.listing(dept.id)] == ["DAY Shift", "Night shift"]

    # Another department's names are its own.
    other = await m.department()
    await groups.create(other.id, "Night shift")
    for missing in (
        groups.rename(dept.id, uuid.uuid4(), "Anything"),
        groups.rename(other.id, day.id, "Stolen"),
        groups.get(other.id, day.id),
    ):
        with pytest.raises(GroupNotFound):
            await missing


async def test_members_join_and_leave_groups_and_only_members_may(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    groups = m.use_cases.groups
    person = await m.member(dept)
    night = await groups.create(dept.id, "Night shift")

    await groups.add_member(dept.id, night.id, person)
    await groups.add_member(dept.id, night.id, person)  # in it already: nothing happens
    [joined] = await m.events(dept.id, MemberJoinedGroup)
    assert (joined.group_id, joined.account_id) == (night.id, person)
    assert (await groups.get(dept.id, night.id)).member_count == 1
    assert (await m.use_cases.members.view(dept.id, person)).groups == [night.id]

    await groups.remove_member(dept.id, night.id, person)
    await groups.remove_member(dept.id, night.id, person)
    [left] = await m.events(dept.id, MemberLeftGroup)
    assert (left.group_id, left.account_id) == (night.id, person)
    assert (await groups.get(dept.id, night.id)).member_count == 0

    other = await m.department()
    outsider = await m.member(other)
    before = await m.event_types(dept.id)
    for stranger in (uuid.uuid4(), outsider):
        with pytest.raises(MemberNotFound):
            await groups.add_member(dept.id, night.id, stranger)
        with pytest.raises(MemberNotFound):
            await groups.remove_member(dept.id, night.id, stranger)
    with pytest.raises(GroupNotFound):
        await groups.add_member(dept.id, uuid.uuid4(), person)
    with pytest.raises(GroupNotFound):
        await groups.add_member(other.id, night.id, outsider)
    # A removed member is not a member any more.
    await m.use_cases.lifecycle.remove(dept.id, person, dept.admin_id)
    with pytest.raises(MemberNotFound):
        await groups.add_member(dept.id, night.id, person)
    assert (await m.event_types(dept.id))[len(before) :] == [MemberRemoved.TYPE]


async def test_deleting_a_group_takes_its_current_members_out_first(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    groups = m.use_cases.groups
    first, second, gone, elsewhere = [await m.member(dept) for _ in range(4)]
    night = await groups.create(dept.id, "Night shift")
    day = await groups.create(dept.id, "Day shift")
    for person in (first, second, gone):
        await groups.add_member(dept.id, night.id, person)
    await groups.add_member(dept.id, day.id, elsewhere)
    await m.use_cases.lifecycle.remove(dept.id, gone, dept.admin_id)
    before = await m.event_types(dept.id)

    await groups.delete(dept.id, night.id)

    assert (await m.event_types(dept.id))[len(before) :] == [
        MemberLeftGroup.TYPE,
        MemberLeftGroup.TYPE,
        GroupDeleted.TYPE,
    ]
    left = await m.events(dept.id, MemberLeftGroup)
    assert {(e.group_id, e.account_id) for e in left} == {(night.id, first), (night.id, second)}
    [deleted] = await m.events(dept.id, GroupDeleted)
    assert deleted.group_id == night.id
    assert [g.id for g in await groups.listing(dept.id)] == [day.id]
    assert (await m.use_cases.members.view(dept.id, first)).groups == []
    assert (await m.use_cases.members.view(dept.id, elsewhere)).groups == [day.id]

    with pytest.raises(GroupNotFound):
        await groups.delete(dept.id, night.id)
    with pytest.raises(GroupNotFound):
        await groups.add_member(dept.id, night.id, first)
    # An empty group goes with its own event alone.
    empty = await groups.create(dept.id, "Empty")
    before = await m.event_types(dept.id)
    await groups.delete(dept.id, empty.id)
    assert (await m.event_types(dept.id))[len(before) :] == [GroupDeleted.TYPE]
