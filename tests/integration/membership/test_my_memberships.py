"""The departments an account is a member of (``GET /v1/me/memberships``): every current
membership with its department's name, role and status, by department name; a removal
takes one off the list and a return puts it back."""

from __future__ import annotations

import uuid

import pytest

from prodigy_users.contracts.membership import Role
from prodigy_users.membership.members.joining import Joined
from prodigy_users.runtime.auth import Principal

from .conftest import Department, Membership

pytestmark = pytest.mark.timeout(60)


async def _joins(
    m: Membership, home: Department, dept: Department, role: Role | None = None
) -> Joined:
    """``home``'s admin accepts an invitation to ``dept`` with the account they have."""
    account = home.admin_id
    _, token = await m.invite(dept, await m.email_of(home, account), role)
    joined = await m.use_cases.entry.accept(token, Principal(account_id=account), None)
    assert isinstance(joined, Joined), joined
    return joined


async def test_an_account_sees_its_departments_by_name(membership: Membership) -> None:
    m = membership
    tag = uuid.uuid4().hex[:6]
    zulu = await m.department(f"Zulu Station {tag}")
    alpha = await m.department(f"Alpha Station {tag}")
    mike = await m.department(f"Mike Station {tag}")
    person = zulu.admin_id
    await _joins(m, zulu, alpha, "officer")
    await _joins(m, zulu, mike, "member")
    await m.use_cases.lifecycle.change(mike.id, person, mike.admin_id, status="inactive")

    found = await m.use_cases.members.memberships_of(person)
    assert [(f.department_id, f.department_name, f.role, f.status) for f in found] == [
        (alpha.id, f"Alpha Station {tag}", "officer", "active"),
        (mike.id, f"Mike Station {tag}", "member", "inactive"),
        (zulu.id, f"Zulu Station {tag}", "admin", "active"),
    ]
    for f in found:
        row = await m.use_cases.members.current(f.department_id, person)
        assert row is not None and f.joined_at == row.joined_at

    # Each department's admin sees only their own department.
    assert [f.department_id for f in await m.use_cases.members.memberships_of(alpha.admin_id)] == [
        alpha.id
    ]


async def test_a_removed_membership_is_not_listed_until_the_person_returns(
    membership: Membership,
) -> None:
    m = membership
    home = await m.department("Home Station")
    away = await m.department("Away Station")
    person = home.admin_id
    await _joins(m, home, away, "officer")
    assert {f.department_id for f in await m.use_cases.members.memberships_of(person)} == {
        home.id,
        away.id,
    }

    await m.use_cases.lifecycle.remove(away.id, person, away.admin_id)
    [left] = await m.use_cases.members.memberships_of(person)
    assert (left.department_id, left.role) == (home.id, "admin")

    # Invited back with no role named: the old one returns, and so does the department.
    assert (await _joins(m, home, away)).status == "restored"
    back = {f.department_id: f.role for f in await m.use_cases.members.memberships_of(person)}
    assert back == {home.id: "admin", away.id: "officer"}


async def test_an_account_of_no_department_has_an_empty_list(membership: Membership) -> None:
    m = membership
    stranger = await m.announce("stranger@example.org")
    assert await m.use_cases.members.memberships_of(stranger) == []
    assert await m.use_cases.members.memberships_of(uuid.uuid4()) == []
