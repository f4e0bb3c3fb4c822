"""Requests that wait for identity: adding a person, a department's first admin, and
what identity's answers (made, refused, delivered twice) do to them."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from prodigy_users.contracts.identity import CreateAccount
from prodigy_users.contracts.membership import DepartmentCreated, MemberAdded, WelcomeRequested
from prodigy_users.membership.errors import (
    AccountExists,
    DepartmentNotFound,
    NotAdministrator,
)
from prodigy_users.membership.tables import accounts, memberships
from prodigy_users.runtime.auth import OPERATOR_SUBJECT
from prodigy_users.runtime.problems import PROBLEM_BASE
from tests.support import random_email

from .conftest import Membership, created, rejected

pytestmark = pytest.mark.timeout(60)


async def test_an_added_person_becomes_a_member_once_identity_makes_their_account(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    email = random_email("ana")
    op = await m.use_cases.members.add(
        department_id=dept.id,
        name="Ana Lima",
        email=email,
        role="officer",
        requested_by=dept.admin_id,
    )
    assert (op.status, op.kind, op.result, op.problem) == ("pending", "add_member", None, None)
    assert op.requested_by == dept.admin_id

    [command] = await m.commands(CreateAccount, email=email)
    assert (command.request_id, command.department_id, command.name) == (op.id, dept.id, "Ana Lima")
    # No password: identity makes the account and emails its credentials (set-password) link.
    assert command.password_hash is None
    added_before = await m.events(dept.id, MemberAdded)
    assert [a.via for a in added_before] == ["operator"], "only the first admin: nobody else yet"

    account_id = uuid.uuid4()
    await m.deliver(created(command, account_id))

    done = await m.use_cases.operations.get(op.id)
    assert done is not None and done.status == "succeeded" and done.problem is None
    assert done.result == {"account_id": str(account_id), "status": "joined", "role": "officer"}
    row = await m.use_cases.members.current(dept.id, account_id)
    assert row is not None
    assert (row.name, row.email, row.role, row.status) == ("Ana Lima", email, "officer", "active")
    [known] = await m.rows(sa.select(accounts).where(accounts.c.account_id == account_id))
    assert (known.email, known.name) == (email, "Ana Lima")

    [added] = (await m.events(dept.id, MemberAdded))[len(added_before) :]
    assert (added.account_id, added.role, added.via, added.added_by) == (
        account_id,
        "officer",
        "admin_add",
        dept.admin_id,
    )
    assert str(added.email) == email
    # The credentials email is identity's; "welcome to the department" is for people
    # who come in through a link.
    assert all(w.account_id != account_id for w in await m.events(dept.id, WelcomeRequested))


async def test_identity_refusing_fails_the_request_with_the_account_exists_problem(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    email = random_email("taken")
    op = await m.use_cases.members.add(
        department_id=dept.id,
        name="Tia Taken",
        email=email,
        role="member",
        requested_by=dept.admin_id,
    )
    assert op.status == "pending"
    [command] = await m.commands(CreateAccount, email=email)
    before = await m.event_types(dept.id)

    holder = uuid.uuid4()
    await m.deliver(rejected(command, existing_account_id=holder))

    failed = await m.use_cases.operations.get(op.id)
    assert failed is not None and failed.status == "failed" and failed.result is None
    assert failed.problem == {
        "type": PROBLEM_BASE + "account-exists",
        "title": "Account already exists",
        "status": 409,
        "detail": AccountExists.default_detail,
    }
    assert str(holder) not in json.dumps(failed.problem), "the answer never names the account"
    assert await m.use_cases.members.current(dept.id, holder) is None
    assert await m.event_types(dept.id) == before, "nothing joined, nothing emitted"

    # A late "created" for a request that already ended changes nothing either.
    await m.deliver(created(command))
    again = await m.use_cases.operations.get(op.id)
    assert again == failed
    assert await m.event_types(dept.id) == before


async def test_a_departments_first_admin_who_has_an_account_joins_with_it(
    membership: Membership,
) -> None:
    m = membership
    email = random_email("chief")
    existing = await m.announce(email, "Cat Chief")
    department_id, op = await m.answered(
        m.patient.departments.create(
            name="Shelbyville Fire",
            admin_name="Cat Chief",
            admin_email=email,
            requested_by=OPERATOR_SUBJECT,
        ),
        email,
        lambda command: rejected(command, existing_account_id=existing),
    )
    assert op.status == "succeeded", op.problem
    assert op.result == {"account_id": str(existing), "status": "joined", "role": "admin"}
    await m.use_cases.members.check_admin(department_id, existing)  # raises if not admin
    settings = await m.use_cases.departments.settings(department_id)
    assert settings.name == "Shelbyville Fire"
    assert settings.invitation_ttl_s == m.settings.invitation_ttl_s

    [made] = await m.events(department_id, DepartmentCreated)
    assert made.name == "Shelbyville Fire"
    [added] = await m.events(department_id, MemberAdded)
    assert (added.account_id, added.role, added.via, added.added_by) == (
        existing,
        "admin",
        "operator",
        None,
    )
    types = await m.event_types(department_id)
    assert types.index(DepartmentCreated.TYPE) < types.index(MemberAdded.TYPE)


async def test_a_first_admin_refused_without_an_account_to_join_fails(
    membership: Membership,
) -> None:
    m = membership
    email = random_email("ghost")
    department_id, op = await m.answered(
        m.patient.departments.create(
            name="No Admin Dept",
            admin_name="Gus Ghost",
            admin_email=email,
            requested_by=OPERATOR_SUBJECT,
        ),
        email,
        rejected,  # identity did not say whose the address is
    )
    assert op.status == "failed"
    assert op.problem is not None and op.problem["type"] == PROBLEM_BASE + "account-exists"
    assert (
        await m.rows(sa.select(memberships).where(memberships.c.department_id == department_id))
        == []
    )
    assert await m.events(department_id, MemberAdded) == []


async def test_an_answer_delivered_twice_changes_nothing(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    email = random_email("twice")
    op = await m.use_cases.members.add(
        department_id=dept.id,
        name="Tom Twice",
        email=email,
        role="member",
        requested_by=dept.admin_id,
    )
    [command] = await m.commands(CreateAccount, email=email)
    answer = created(command)
    body = await m.deliver(answer)
    first = await m.use_cases.operations.get(op.id)
    types = await m.event_types(dept.id)
    assert types.count(MemberAdded.TYPE) == 2  # the admin's and this one

    await m.redeliver(answer, body)
    await m.redeliver(answer, body)

    assert await m.applied(body) == 1
    assert await m.use_cases.operations.get(op.id) == first
    assert await m.event_types(dept.id) == types
    assert (
        len(
            await m.rows(
                sa.select(memberships).where(
                    memberships.c.department_id == dept.id,
                    memberships.c.account_id == answer.account_id,
                )
            )
        )
        == 1
    )


async def test_only_a_departments_admins_administer_it(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    member = await m.member(dept, role="officer")
    await m.use_cases.members.check_admin(dept.id, dept.admin_id)
    with pytest.raises(NotAdministrator):
        await m.use_cases.members.check_admin(dept.id, member)
    with pytest.raises(NotAdministrator):
        await m.use_cases.members.check_admin(dept.id, uuid.uuid4())
    with pytest.raises(DepartmentNotFound):
        await m.use_cases.members.check_admin(uuid.uuid4(), dept.admin_id)
    other = await m.department()
    with pytest.raises(NotAdministrator):
        await m.use_cases.members.check_admin(other.id, dept.admin_id)
