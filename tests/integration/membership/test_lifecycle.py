"""A member's life in a department: role, status and employee ID changes, the last admin,
removal, coming back with one's history, and password resets."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from prodigy_users.contracts.identity import IssuePasswordReset
from prodigy_users.contracts.membership import (
    EmployeeIdSet,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.membership.errors import EmployeeIdTaken, LastAdmin, MemberNotFound
from prodigy_users.membership.members.joining import Joined
from prodigy_users.runtime.auth import Principal

from .conftest import Membership

pytestmark = pytest.mark.timeout(60)


async def test_each_change_is_its_own_event(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    person = await m.member(dept)
    lifecycle = m.use_cases.lifecycle

    await lifecycle.change(dept.id, person, dept.admin_id, role="officer")
    await lifecycle.change(dept.id, person, dept.admin_id, status="inactive")
    await lifecycle.change(dept.id, person, dept.admin_id, employee_id="  E-7 ")

    [role] = await m.events(dept.id, MemberRoleChanged)
    assert (role.account_id, role.role, role.previous_role, role.changed_by) == (
        person,
        "officer",
        "member",
        dept.admin_id,
    )
    [status] = await m.events(dept.id, MemberStatusChanged)
    assert (status.account_id, status.status, status.changed_by) == (
        person,
        "inactive",
        dept.admin_id,
    )
    [employee] = await m.events(dept.id, EmployeeIdSet)
    assert (employee.account_id, employee.employee_id) == (person, "E-7"), "spaces trimmed"
    row = await m.use_cases.members.current(dept.id, person)
    assert (row.role, row.status, row.employee_id) == ("officer", "inactive", "E-7")

    # What is already so changes nothing and says nothing.
    before = await m.event_types(dept.id)
    await lifecycle.change(
        dept.id, person, dept.admin_id, role="officer", status="inactive", employee_id="E-7"
    )
    await lifecycle.change(dept.id, person, dept.admin_id)  # employee ID not given: kept
    assert await m.event_types(dept.id) == before
    assert (await m.use_cases.members.current(dept.id, person)).employee_id == "E-7"

    # Several changes at once: one event each, in order; a blank ID clears it.
    await lifecycle.change(
        dept.id, person, dept.admin_id, role="member", status="active", employee_id=" "
    )
    assert (await m.event_types(dept.id))[len(before) :] == [
        MemberRoleChanged.TYPE,
        MemberStatusChanged.TYPE,
        EmployeeIdSet.TYPE,
    ]
    assert (await m.events(dept.id, EmployeeIdSet))[-1].employee_id is None
    row = await m.use_cases.members.current(dept.id, person)
    assert (row.role, row.status, row.employee_id) == ("member", "active", None)

    with pytest.raises(MemberNotFound):
        await lifecycle.change(dept.id, uuid.uuid4(), dept.admin_id, role="officer")


async def test_the_last_admin_can_be_neither_demoted_nor_removed(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    lifecycle = m.use_cases.lifecycle
    before = await m.event_types(dept.id)

    with pytest.raises(LastAdmin):
        await lifecycle.change(dept.id, dept.admin_id, dept.admin_id, role="member")
    with pytest.raises(LastAdmin):
        await lifecycle.remove(dept.id, dept.admin_id, dept.admin_id)
    # Refused as a whole: the status that came with the role did not change either.
    with pytest.raises(LastAdmin):
        await lifecycle.change(
            dept.id, dept.admin_id, dept.admin_id, status="inactive", role="officer"
        )
    row = await m.use_cases.members.current(dept.id, dept.admin_id)
    assert (row.role, row.status) == ("admin", "active")
    assert await m.event_types(dept.id) == before

    # With a second admin the first may step down; then the second is the last.
    second = await m.member(dept, role="admin")
    await lifecycle.change(dept.id, dept.admin_id, second, role="officer")
    assert (await m.events(dept.id, MemberRoleChanged))[-1].previous_role == "admin"
    with pytest.raises(LastAdmin):
        await lifecycle.remove(dept.id, second, second)
    # Status is a reporting flag, not a role: the last admin may be made inactive.
    await lifecycle.change(dept.id, second, second, status="inactive")
    await m.use_cases.members.check_admin(dept.id, second)


async def test_two_admins_demoting_each_other_at_once_leave_one(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    second = await m.member(dept, role="admin")
    lifecycle = m.use_cases.lifecycle

    outcomes = await asyncio.gather(
        lifecycle.change(dept.id, dept.admin_id, second, role="member"),
        lifecycle.change(dept.id, second, dept.admin_id, role="member"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["LastAdmin", "NoneType"], outcomes
    assert await admins(m, dept.id, dept.admin_id, second) == 1
    assert len(await m.events(dept.id, MemberRoleChanged)) == 1


async def test_an_admin_removed_while_the_other_steps_down_leaves_one(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    second = await m.member(dept, role="admin")
    lifecycle = m.use_cases.lifecycle

    outcomes = await asyncio.gather(
        lifecycle.remove(dept.id, dept.admin_id, second),
        lifecycle.change(dept.id, second, second, role="officer"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["LastAdmin", "NoneType"], outcomes
    assert await admins(m, dept.id, dept.admin_id, second) == 1


async def admins(m: Membership, department_id: uuid.UUID, *accounts: uuid.UUID) -> int:
    """How many of ``accounts`` are current admins of the department."""
    rows = [await m.use_cases.members.current(department_id, a) for a in accounts]
    return sum(1 for r in rows if r is not None and r.role == "admin")


async def test_an_employee_id_another_person_has_is_refused(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    first, second = await m.member(dept), await m.member(dept)
    lifecycle = m.use_cases.lifecycle
    await lifecycle.change(dept.id, first, dept.admin_id, employee_id="E-1")
    await lifecycle.change(dept.id, second, dept.admin_id, employee_id="E-2")
    before = await m.event_types(dept.id)

    with pytest.raises(EmployeeIdTaken) as taken:
        await lifecycle.change(dept.id, second, dept.admin_id, employee_id="E-1")
    assert taken.value.errors == [
        {"field": "employee_id", "message": "already used in this department"}
    ]
    # The whole change is refused, the role that came with it too.
    with pytest.raises(EmployeeIdTaken):
        await lifecycle.change(dept.id, second, dept.admin_id, role="officer", employee_id="E-1")
    row = await m.use_cases.members.current(dept.id, second)
    assert (row.employee_id, row.role) == ("E-2", "member")
    assert await m.event_types(dept.id) == before

    # A removed person keeps their ID (it comes back with them): still taken.
    await lifecycle.remove(dept.id, first, dept.admin_id)
    with pytest.raises(EmployeeIdTaken):
        await lifecycle.change(dept.id, second, dept.admin_id, employee_id="E-1")
    # Another department's IDs are its own.
    other = await m.department()
    elsewhere = await m.member(other)
    await lifecycle.change(other.id, elsewhere, other.admin_id, employee_id="E-1")
    assert (await m.use_cases.members.current(other.id, elsewhere)).employee_id == "E-1"


async def test_a_removed_person_comes_back_with_role_groups_and_employee_id(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    person = await m.member(dept, role="officer", name="Rae Return")
    email = await m.email_of(dept, person)
    lifecycle, groups = m.use_cases.lifecycle, m.use_cases.groups
    await lifecycle.change(dept.id, person, dept.admin_id, employee_id="E-9", status="inactive")
    night = await groups.create(dept.id, "Night shift")
    await groups.add_member(dept.id, night.id, person)

    await lifecycle.remove(dept.id, person, dept.admin_id)
    [removed] = await m.events(dept.id, MemberRemoved)
    assert (removed.account_id, removed.removed_by) == (person, dept.admin_id)
    assert await m.use_cases.members.current(dept.id, person) is None
    assert (await groups.get(dept.id, night.id)).member_count == 0
    for gone in (
        lifecycle.remove(dept.id, person, dept.admin_id),
        lifecycle.change(dept.id, person, dept.admin_id, role="member"),
        lifecycle.reset_password(dept.id, person),
    ):
        with pytest.raises(MemberNotFound):
            await gone

    # Invited again with no role: they come back as they were.
    _, token = await m.invite(dept, email)
    joined = await m.use_cases.entry.accept(token, Principal(account_id=person), None)
    assert isinstance(joined, Joined)
    assert (joined.account_id, joined.role, joined.status) == (person, "officer", "restored")

    [restored] = await m.events(dept.id, MemberRestored)
    assert (restored.account_id, restored.role, restored.employee_id, restored.status) == (
        person,
        "officer",
        "E-9",
        "inactive",
    )
    assert (restored.group_ids, restored.via, str(restored.email)) == (
        [night.id],
        "invitation",
        email,
    )
    view = await m.use_cases.members.view(dept.id, person)
    assert (view.row.role, view.row.employee_id, view.groups) == ("officer", "E-9", [night.id])
    assert (await groups.get(dept.id, night.id)).member_count == 1


async def test_a_password_reset_is_asked_of_identity_for_members_only(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    person = await m.member(dept)
    await m.use_cases.lifecycle.reset_password(dept.id, person)
    [asked] = await m.events(dept.id, IssuePasswordReset)
    assert (asked.account_id, asked.department_id) == (person, dept.id)

    other = await m.department()
    with pytest.raises(MemberNotFound):
        await m.use_cases.lifecycle.reset_password(other.id, person)
    assert await m.events(other.id, IssuePasswordReset) == []
