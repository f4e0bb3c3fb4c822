"""Bulk uploads: the worker takes every row to its outcome, identity's batch answers
make the new members, a dry run only tells, an update upload changes members through
the lifecycle rules, and results.csv has a line per input row."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import CreateAccounts
from prodigy_users.contracts.membership import (
    EmployeeIdSet,
    GroupCreated,
    ImportFinished,
    ImportStarted,
    MemberAdded,
    MemberInvited,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRoleChanged,
)
from prodigy_users.membership.errors import LastAdmin
from prodigy_users.membership.imports.rules import Mode
from prodigy_users.membership.tables import import_rows, invitations, memberships
from tests.support import random_email

from .conftest import Department, Membership, batch_answer

pytestmark = pytest.mark.timeout(60)


async def drain(m: Membership) -> int:
    """``ImportWorker.step`` until it says nothing moved; how many steps moved something."""
    for steps in range(100):
        if not await m.use_cases.import_worker.step():
            return steps
    raise AssertionError("the import worker never ran out of work")


async def upload(
    m: Membership, dept: Department, text: str, *, mode: Mode = "add", dry_run: bool = False
) -> uuid.UUID:
    """The admin uploads ``text`` as a CSV file."""
    return await m.use_cases.imports.start(
        dept.id, dept.admin_id, text.encode(), file_name="people.csv", mode=mode, dry_run=dry_run
    )


async def outcomes(m: Membership, import_id: uuid.UUID) -> dict[int, tuple[str | None, str | None]]:
    """``line: (outcome, reason)`` of every row."""
    rows = await m.rows(
        sa.select(import_rows).where(import_rows.c.import_id == import_id).order_by("line")
    )
    return {r.line: (r.outcome, r.reason) for r in rows}


async def department_rows(m: Membership, table: sa.Table, dept: Department) -> list[Any]:
    return await m.rows(sa.select(table).where(table.c.department_id == dept.id))


class Mixed:
    """A department and a file with a row for every outcome an ``add`` upload has."""

    def __init__(self, m: Membership, dept: Department, member_email: str) -> None:
        self.ana, self.bo = random_email("ana"), random_email("bo")
        self.kim, self.xia = random_email("kim"), random_email("xia")  # accounts elsewhere
        self.member_email = member_email
        self.text = "\r\n".join(
            [
                "Name,Email,Role,Employee ID,Groups",
                f"Ana Lima,{self.ana},officer,E-1,Night shift",  # 2 created
                f"Bo Chen,{self.bo},,,Night shift; day shift",  # 3 created
                f"Mo Member,{member_email},,,",  # 4 already_member
                f"Kim Known,{self.kim},,,",  # 5 invited: membership knows the account
                f"Xia Exists,{self.xia},,,",  # 6 invited: identity says it has an account
                f",{random_email('nameless')},,,",  # 7 invalid: no name to make an account
                "Bad Address,not-an-email,,,",  # 8 invalid
                f"Ana Again,{self.ana.upper()},,,",  # 9 duplicate_in_file
                f"Cy New,{random_email('cy')},,E-1,",  # 10 invalid: ID also on line 2
            ]
        )

    @classmethod
    async def make(cls, m: Membership) -> tuple[Department, Mixed]:
        dept = await m.department()
        await m.use_cases.groups.create(dept.id, "NIGHT SHIFT")
        mixed = cls(m, dept, await m.email_of(dept, await m.member(dept)))
        await m.announce(mixed.kim, "Kim Known")
        return dept, mixed


EXPECTED = {
    2: "created",
    3: "created",
    4: "already_member",
    5: "invited",
    6: "invited",
    7: "invalid",
    8: "invalid",
    9: "duplicate_in_file",
    10: "invalid",
}
COUNTS = {
    "created": 2,
    "invited": 2,
    "already_member": 1,
    "updated": 0,
    "duplicate_in_file": 1,
    "invalid": 3,
}


async def test_an_upload_takes_every_row_to_its_outcome(membership: Membership) -> None:
    m = membership
    dept, mixed = await Mixed.make(m)
    members_before = len(await department_rows(m, memberships, dept))

    import_id = await upload(m, dept, mixed.text)
    [started] = await m.events(dept.id, ImportStarted)
    assert (started.import_id, started.rows, started.mode, started.file_name) == (
        import_id,
        9,
        "add",
        "people.csv",
    )
    assert started.started_by == dept.admin_id

    assert await drain(m) >= 3, "groups, then the rows in chunks of four"
    # New people wait for identity: asked in batches of two.
    batches = await m.events(dept.id, CreateAccounts)
    asked = [[(str(a.email), a.name) for a in b.accounts] for b in batches]
    assert asked == [[(mixed.ana, "Ana Lima"), (mixed.bo, "Bo Chen")], [(mixed.xia, "Xia Exists")]]
    waiting = await m.use_cases.imports.get(dept.id, import_id)
    assert waiting is not None and waiting.status == "running"
    assert waiting.counts["pending"] == 3
    assert [g.name for g in await m.use_cases.groups.listing(dept.id)] == [
        "day shift",
        "NIGHT SHIFT",
    ], "missing groups made once, before any row; names matched whatever their case"

    holder = uuid.uuid4()
    answers = []
    for batch in batches:
        answer, announced = batch_answer(batch, {email_key(mixed.xia): holder})
        answers.append((answer, await m.deliver(answer)))
        for account in announced:  # each new account's own event: an import ignores it
            assert await m.applied(await m.deliver(account)) == 0
    await drain(m)  # Xia goes on to be invited

    found = await outcomes(m, import_id)
    assert {line: outcome for line, (outcome, _) in found.items()} == EXPECTED
    assert found[2][1] is None
    assert found[6][1] == "the email already has an account: invitation sent"
    assert found[9][1] == "same email as line 2"
    assert found[7][1] == "name is missing (needed to create an account)"
    finished = await m.use_cases.imports.get(dept.id, import_id)
    assert finished is not None and finished.status == "finished"
    assert finished.finished_at is not None
    assert {k: v for k, v in finished.counts.items() if v} == {k: v for k, v in COUNTS.items() if v}

    added = {str(e.email): e for e in await m.events(dept.id, MemberAdded) if e.via == "import"}
    assert set(added) == {mixed.ana, mixed.bo}
    ana, bo = added[mixed.ana], added[mixed.bo]
    assert (ana.role, ana.employee_id, ana.added_by) == ("officer", "E-1", dept.admin_id)
    assert (bo.role, bo.employee_id) == ("member", None)
    groups = {g.name: g.id for g in await m.use_cases.groups.listing(dept.id)}
    assert {(e.account_id, e.group_id) for e in await m.events(dept.id, MemberJoinedGroup)} == {
        (ana.account_id, groups["NIGHT SHIFT"]),
        (bo.account_id, groups["NIGHT SHIFT"]),
        (bo.account_id, groups["day shift"]),
    }
    assert [g.name for g in await m.events(dept.id, GroupCreated)] == ["NIGHT SHIFT", "day shift"]
    invited = {str(e.email): e.name for e in await m.events(dept.id, MemberInvited)}
    # The file's Name column names the invitation, as a pasted "Name <address>" would.
    assert invited == {mixed.kim: "Kim Known", mixed.xia: "Xia Exists"}
    assert len(await department_rows(m, memberships, dept)) == members_before + 2
    view = await m.use_cases.members.view(dept.id, ana.account_id)
    assert (view.row.role, view.row.employee_id, view.groups) == (
        "officer",
        "E-1",
        [groups["NIGHT SHIFT"]],
    )
    [done] = await m.events(dept.id, ImportFinished)
    assert done.import_id == import_id and done.rows == 9
    assert {k: getattr(done, k) for k in COUNTS} == COUNTS
    assert (await m.event_types(dept.id))[-1] == ImportFinished.TYPE

    # identity's answers delivered again change nothing.
    before = await m.event_types(dept.id)
    for answer, body in answers:
        await m.redeliver(answer, body)
        assert await m.applied(body) == 1
    assert await drain(m) == 0
    assert await m.event_types(dept.id) == before
    assert await outcomes(m, import_id) == found


async def test_results_have_one_line_per_input_row(membership: Membership) -> None:
    m = membership
    dept, mixed = await Mixed.make(m)
    import_id = await upload(m, dept, mixed.text, dry_run=True)
    await drain(m)

    found = await m.use_cases.imports.results(dept.id, import_id)
    assert found is not None
    view, lines = found
    text = "".join(lines)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table[0] == [
        "line",
        "Name",
        "Email",
        "Role",
        "Employee ID",
        "Groups",
        "outcome",
        "reason",
    ]
    assert [int(r[0]) for r in table[1:]] == list(EXPECTED)
    assert {int(r[0]): r[6] for r in table[1:]} == EXPECTED | {6: "created"}
    assert all(len(r) == 8 for r in table)
    assert table[1][1:3] == ["Ana Lima", mixed.ana], "the input cells as uploaded"
    assert view.status == "finished" and view.total_rows == 9

    assert await m.use_cases.imports.results(dept.id, uuid.uuid4()) is None
    other = await m.department()
    assert await m.use_cases.imports.results(other.id, import_id) is None
    assert await m.use_cases.imports.get(other.id, import_id) is None


async def test_a_dry_run_gives_the_outcomes_and_changes_nothing(membership: Membership) -> None:
    m = membership
    dept, mixed = await Mixed.make(m)
    events_before = await m.event_types(dept.id)
    members_before = await department_rows(m, memberships, dept)
    groups_before = [g.name for g in await m.use_cases.groups.listing(dept.id)]

    import_id = await upload(m, dept, mixed.text, dry_run=True)
    await drain(m)

    found = await outcomes(m, import_id)
    # Identity is not asked, so Xia's address would be "created" as far as membership knows.
    assert {line: outcome for line, (outcome, _) in found.items()} == EXPECTED | {6: "created"}
    view = await m.use_cases.imports.get(dept.id, import_id)
    assert view is not None and view.status == "finished" and view.dry_run
    assert view.counts["created"] == 3 and view.counts["invited"] == 1
    assert await m.event_types(dept.id) == events_before, "no command, no event"
    assert await department_rows(m, memberships, dept) == members_before
    assert await department_rows(m, invitations, dept) == []
    assert [g.name for g in await m.use_cases.groups.listing(dept.id)] == groups_before


async def test_an_update_upload_changes_members_through_the_lifecycle_rules(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    lifecycle, groups = m.use_cases.lifecycle, m.use_cases.groups
    mover, keeper, other = [await m.member(dept) for _ in range(3)]
    await lifecycle.change(dept.id, keeper, dept.admin_id, employee_id="E-5")
    night = await groups.create(dept.id, "Night shift")
    await groups.add_member(dept.id, night.id, mover)
    emails = [await m.email_of(dept, a) for a in (mover, keeper, other, dept.admin_id)]
    text = "\r\n".join(
        [
            "Email,Role,Employee ID,Groups",
            f"{emails[0]},officer,E-2,Day shift",  # 2 updated
            f"{emails[1]},member,,",  # 3 already_member: nothing to change
            f"{emails[2]},,E-5,",  # 4 invalid: keeper has E-5
            f"{emails[3]},member,,",  # 5 invalid: the last admin
        ]
    )
    before = len(await m.event_types(dept.id))

    import_id = await upload(m, dept, text, mode="update")
    await drain(m)

    found = await outcomes(m, import_id)
    assert found == {
        2: (
            "updated",
            "role member -> officer; employee ID (none) -> E-2; groups +Day shift -Night shift",
        ),
        3: ("already_member", "already a member: nothing to change"),
        4: ("invalid", "employee ID 'E-5' is already used by another person in this department"),
        5: ("invalid", LastAdmin.default_detail),
    }
    day = {g.name: g.id for g in await groups.listing(dept.id)}["Day shift"]
    view = await m.use_cases.members.view(dept.id, mover)
    assert (view.row.role, view.row.employee_id, view.groups) == ("officer", "E-2", [day])
    assert (await m.use_cases.members.current(dept.id, dept.admin_id)).role == "admin"
    assert (await m.use_cases.members.current(dept.id, other)).employee_id is None

    types = (await m.event_types(dept.id))[before:]
    assert types == [
        ImportStarted.TYPE,
        GroupCreated.TYPE,
        MemberRoleChanged.TYPE,
        EmployeeIdSet.TYPE,
        MemberJoinedGroup.TYPE,
        MemberLeftGroup.TYPE,
        ImportFinished.TYPE,
    ]
    [done] = await m.events(dept.id, ImportFinished)
    assert (done.updated, done.already_member, done.invalid) == (1, 1, 2)
