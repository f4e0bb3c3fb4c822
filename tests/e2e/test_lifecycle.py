"""The member lifecycle end to end: role, employee ID, active/inactive, last-admin
protection, remove and restore with history, and password resets."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    accept,
    added_person,
    bearer,
    invitation_token,
    invite_ok,
    invited_person,
    link_token,
    patch_member,
    problem_type,
    random_email,
    report_row,
    second_admin,
    subject_has,
    wait_for,
    wait_mail_matching,
    wait_row,
)

pytestmark = pytest.mark.e2e


def _members(admin: Admin, account_id: str) -> str:
    return f"/v1/departments/{admin.department_id}/members/{account_id}"


def _groups(row: dict[str, Any] | None) -> set[str]:
    return {g["name"] for g in row["groups"]} if row else set()


async def test_role_employee_id_and_status(api: Api) -> None:
    admin = await api.create_department()
    person = await invited_person(api, admin)
    other = await added_person(api, admin)
    employee_id = f"E-{uuid.uuid4().hex[:6]}"

    r = await patch_member(api, admin, person.account_id, {"role": "officer"})
    assert r.status_code == 200, r.text
    member = r.json()
    assert (member["account_id"], member["email"]) == (person.account_id, person.email)
    assert (member["role"], member["status"], member["groups"]) == ("officer", "active", [])
    r = await patch_member(api, admin, person.account_id, {"employee_id": employee_id})
    assert r.status_code == 200 and r.json()["employee_id"] == employee_id, r.text
    assert r.json()["role"] == "officer", "fields not sent stay as they are"

    # Employee IDs are unique within the department.
    r = await patch_member(api, admin, other.account_id, {"employee_id": employee_id})
    assert r.status_code == 409 and problem_type(r) == "employee-id-taken", r.text
    assert "employee_id" in [e["field"] for e in r.json()["errors"]]
    r = await patch_member(api, admin, person.account_id, {"employee_id": employee_id})
    assert r.status_code == 200, "setting one's own ID again is no conflict"
    elsewhere = await api.create_department()
    someone = await added_person(api, elsewhere)
    r = await patch_member(api, elsewhere, someone.account_id, {"employee_id": employee_id})
    assert r.status_code == 200, "another department may use the same ID"

    r = await patch_member(api, admin, person.account_id, {"status": "inactive"})
    assert r.status_code == 200 and r.json()["status"] == "inactive", r.text
    row = await wait_row(
        api,
        admin,
        person.account_id,
        lambda row: (
            row is not None
            and (row["role"], row["status"], row["employee_id"])
            == ("officer", "inactive", employee_id)
        ),
        what="role, status and employee ID in the users table",
    )
    assert row is not None and row["email"] == person.email

    # Inactive is a reporting flag: they still sign in and use what their role allows.
    token = await api.login(person.email)
    r = await api.http.get(api.url("identity", "/v1/me"), headers=bearer(token))
    assert r.status_code == 200 and r.json()["account_id"] == person.account_id
    r = await api.http.get(
        api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    r = await patch_member(api, admin, person.account_id, {"role": "admin"})
    assert r.status_code == 200, r.text
    as_admin = Admin(admin.department_id, person.account_id, person.email, token)
    assert len(await invite_ok(api, as_admin, [random_email("by-inactive")])) == 1

    # Clearing the ID frees it for someone else.
    r = await patch_member(api, admin, person.account_id, {"employee_id": None})
    assert r.status_code == 200 and r.json()["employee_id"] is None, r.text
    r = await patch_member(api, admin, other.account_id, {"employee_id": employee_id})
    assert r.status_code == 200 and r.json()["employee_id"] == employee_id, r.text
    await wait_row(
        api,
        admin,
        other.account_id,
        lambda row: row is not None and row["employee_id"] == employee_id,
        what="the ID moved to the other person",
    )
    assert (await report_row(api, admin, person.account_id) or {})["employee_id"] is None

    r = await patch_member(api, admin, str(uuid.uuid4()), {"role": "member"})
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text
    r = await patch_member(api, admin, other.account_id, {"role": "captain"})
    assert r.status_code == 422, r.text
    r = await patch_member(api, admin, other.account_id, {"status": "asleep"})
    assert r.status_code == 422, r.text


async def test_a_department_always_keeps_an_admin(api: Api) -> None:
    admin = await api.create_department()

    r = await patch_member(api, admin, admin.account_id, {"role": "member"})
    assert r.status_code == 409 and problem_type(r) == "last-admin", r.text
    r = await api.http.delete(
        api.url("membership", _members(admin, admin.account_id)), headers=admin.headers
    )
    assert r.status_code == 409 and problem_type(r) == "last-admin", r.text

    other = await added_person(api, admin)
    r = await patch_member(api, admin, other.account_id, {"role": "admin"})
    assert r.status_code == 200, r.text
    r = await patch_member(api, admin, admin.account_id, {"role": "officer"})
    assert r.status_code == 200 and r.json()["role"] == "officer", r.text

    # Now the other one is the last admin, with the same protection.
    second = Admin(admin.department_id, other.account_id, other.email, other.token)
    r = await patch_member(api, second, other.account_id, {"role": "member"})
    assert r.status_code == 409 and problem_type(r) == "last-admin", r.text
    r = await api.http.delete(
        api.url("membership", _members(second, other.account_id)), headers=second.headers
    )
    assert r.status_code == 409 and problem_type(r) == "last-admin", r.text
    # The demoted first admin manages nobody any more.
    r = await patch_member(api, admin, other.account_id, {"role": "member"})
    assert r.status_code == 403, r.text
    # As an officer the first admin still sees the reports (the promoted one may not be
    # known to reporting as admin yet).
    await wait_row(
        api,
        admin,
        admin.account_id,
        lambda row: row is not None and row["role"] == "officer",
        what="the first admin shown as officer",
    )
    await wait_row(
        api,
        admin,
        other.account_id,
        lambda row: row is not None and row["role"] == "admin",
        what="the other one shown as admin",
    )


async def test_two_admins_demoting_and_removing_each_other_at_once_leave_one(api: Api) -> None:
    """Each change counts the admins; without serialising them, both counted two."""

    async def act(action: str, who: Admin, whom: Admin) -> httpx.Response:
        if action == "demote":
            return await patch_member(api, who, whom.account_id, {"role": "member"})
        return await api.http.delete(
            api.url("membership", _members(who, whom.account_id)), headers=who.headers
        )

    for action in ("demote", "remove"):
        first = await api.create_department()
        second = await second_admin(api, first)
        answers = await asyncio.gather(act(action, first, second), act(action, second, first))
        codes = sorted(r.status_code for r in answers)
        # The loser is refused as the last admin (both were admins when they asked), or
        # as no admin at all (the winner's change had committed when it asked).
        assert codes in ([200, 403], [200, 409], [204, 403], [204, 409]), [r.text for r in answers]
        refused = next(r for r in answers if r.status_code in (403, 409))
        expected = "last-admin" if refused.status_code == 409 else "forbidden"
        assert problem_type(refused) == expected, refused.text
        r = await api.http.get(
            api.url("membership", f"/v1/departments/{first.department_id}"),
            headers=(first if answers[1] is refused else second).headers,
        )
        assert r.status_code == 200, r.text  # whoever won still administers it


async def test_removed_person_disappears_and_comes_back_with_their_history(api: Api) -> None:
    name = f"Station {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    person = await invited_person(api, admin, role="officer", name="Rémy Returner")
    night = await api.create_group(admin, "Night shift")
    day = await api.create_group(admin, "Day shift")
    for group_id in (night, day):
        await api.put_in_group(admin, group_id, person.account_id)
    employee_id = f"E-{uuid.uuid4().hex[:6]}"
    r = await patch_member(api, admin, person.account_id, {"employee_id": employee_id})
    assert r.status_code == 200, r.text
    before = await wait_row(
        api,
        admin,
        person.account_id,
        lambda row: (
            _groups(row) == {"Night shift", "Day shift"}
            and row is not None
            and row["employee_id"] == employee_id
        ),
        what="groups and employee ID in the users table",
    )
    assert before is not None and before["role"] == "officer"
    members_url = api.url("membership", _members(admin, person.account_id))

    r = await api.http.delete(members_url, headers=admin.headers)

    assert r.status_code == 204, r.text
    await wait_row(api, admin, person.account_id, lambda row: row is None, what="the person gone")
    record_url = api.url(
        "reporting", f"/v1/reports/departments/{admin.department_id}/users/{person.account_id}"
    )
    assert (await api.http.get(record_url, headers=admin.headers)).status_code == 404
    r = await patch_member(api, admin, person.account_id, {"role": "member"})
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text
    r = await api.http.delete(members_url, headers=admin.headers)
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        headers=admin.headers,
    )
    assert {g["name"]: g["member_count"] for g in r.json()["items"]} == {
        "Night shift": 0,
        "Day shift": 0,
    }, "the department does not see removed people in its groups either"
    # The account stays: they still sign in; as a removed officer they see no reports.
    token = await api.login(person.email)
    me = await api.http.get(api.url("identity", "/v1/me"), headers=bearer(token))
    assert me.json()["account_id"] == person.account_id

    async def no_reports() -> bool:
        r = await api.http.get(
            api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
            headers=bearer(token),
        )
        return r.status_code == 403

    await wait_for(no_reports, what="a removed officer losing access to reports")

    # Invited back (no role named) and accepting: same account, history restored.
    [result] = await invite_ok(api, admin, [person.email])
    assert result["outcome"] == "invited", result
    mails = await wait_mail_matching(api, person.email, subject_has("invited", name), count=2)
    returning = Person(person.account_id, person.email, token)
    r = await accept(api, invitation_token(mails[-1]), person=returning)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "department_id": admin.department_id,
        "account_id": person.account_id,
        "role": "officer",
        "status": "restored",
    }
    after = await wait_row(
        api,
        admin,
        person.account_id,
        lambda row: row is not None and _groups(row) == {"Night shift", "Day shift"},
        what="the person back in the users table with their groups",
    )
    assert after is not None
    assert (after["role"], after["employee_id"], after["email"]) == (
        "officer",
        employee_id,
        person.email,
    )
    r = await patch_member(api, admin, person.account_id, {})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["groups"]) == sorted([night, day])
    assert r.json()["employee_id"] == employee_id
    record = await api.http.get(record_url, headers=admin.headers)
    assert record.status_code == 200, record.text
    events = [h["event"] for h in record.json()["history"]]
    assert "removed" in events and "restored" in events
    assert events.index("removed") < events.index("restored")
    assert events[0] == "joined", "the history from before the removal is kept"

    # Removed again, then invited back naming a role: that role, history still kept.
    assert (await api.http.delete(members_url, headers=admin.headers)).status_code == 204
    await wait_row(api, admin, person.account_id, lambda row: row is None, what="gone again")
    [result] = await invite_ok(api, admin, [person.email], role="member")
    mails = await wait_mail_matching(api, person.email, subject_has("invited", name), count=3)
    r = await accept(api, invitation_token(mails[-1]), person=returning)
    assert r.status_code == 200 and r.json()["role"] == "member", r.text
    assert r.json()["status"] == "restored"
    again = await wait_row(
        api,
        admin,
        person.account_id,
        lambda row: row is not None and row["role"] == "member",
        what="the person back as member",
    )
    assert again is not None and _groups(again) == {"Night shift", "Day shift"}
    assert again["employee_id"] == employee_id


async def test_admin_triggered_password_reset(api: Api) -> None:
    name = f"Station {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    person = await invited_person(api, admin)
    url = api.url("membership", _members(admin, person.account_id) + "/password-reset")

    r = await api.http.post(url, headers=admin.headers)

    assert r.status_code == 202, r.text
    [mail] = await wait_mail_matching(api, person.email, subject_has("reset"))
    assert name in mail["text"] and mail["html"] and name in mail["html"]
    token = link_token(mail)
    new_password = PASSWORD + " again"
    r = await api.http.post(
        api.url("identity", "/v1/password/set"), json={"token": token, "password": new_password}
    )
    assert r.status_code == 204, r.text
    await api.login(person.email, new_password)
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": person.email, "password": PASSWORD}
    )
    assert r.status_code == 401, "the old password is gone"
    r = await api.http.post(
        api.url("identity", "/v1/password/set"), json={"token": token, "password": PASSWORD}
    )
    assert r.status_code == 400, "the link works once"

    r = await api.http.post(
        api.url("membership", _members(admin, str(uuid.uuid4())) + "/password-reset"),
        headers=admin.headers,
    )
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text


async def test_twenty_admin_resets_send_at_most_three_emails(api: Api, controllable: Any) -> None:
    admin = await api.create_department()
    person = await added_person(api, admin)
    url = api.url("membership", _members(admin, person.account_id) + "/password-reset")
    answers = await asyncio.gather(*(api.http.post(url, headers=admin.headers) for _ in range(20)))
    assert [r.status_code for r in answers] == [202] * 20  # the admin is not told more

    # Wait until identity has worked all twenty commands: then what it issued is final.
    membership = create_async_engine(controllable.database_url("membership"))
    identity = create_async_engine(controllable.database_url("identity"))
    try:
        async with membership.connect() as conn:
            commands = (
                await conn.execute(
                    sa.text(
                        "SELECT event_id FROM outbox WHERE type = 'identity.issue_password_reset'"
                        " AND envelope->'data'->>'account_id' = :account"
                    ),
                    {"account": person.account_id},
                )
            ).scalars()
            sent = set(commands)
        assert len(sent) == 20

        async def all_worked() -> int | None:
            async with identity.connect() as conn:
                done = await conn.scalar(
                    sa.text("SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)"),
                    {"ids": list(sent)},
                )
            return int(done or 0) if done == len(sent) else None

        await wait_for(all_worked, timeout=60, what="identity to work the 20 resets")
        async with identity.connect() as conn:
            issued = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM credential_tokens"
                    " WHERE account_id = :account AND purpose = 'reset'"
                ),
                {"account": uuid.UUID(person.account_id)},
            )
    finally:
        await membership.dispose()
        await identity.dispose()
    assert issued == 3
    mails = await wait_mail_matching(api, person.email, subject_has("reset"), count=3)
    assert len(mails) == 3


async def test_public_reset_request_answers_alike_and_mails_only_real_accounts(api: Api) -> None:
    admin = await api.create_department()
    person = await invited_person(api, admin)
    ghost = random_email("ghost")
    url = api.url("identity", "/v1/password/reset-requests")

    unknown = await api.http.post(url, json={"email": ghost})
    known = await api.http.post(url, json={"email": person.email.upper()})

    assert unknown.status_code == known.status_code == 202, (unknown.text, known.text)
    assert unknown.content == known.content
    [mail] = await wait_mail_matching(api, person.email, subject_has("reset"))
    new_password = PASSWORD + " reset"
    r = await api.http.post(
        api.url("identity", "/v1/password/set"),
        json={"token": link_token(mail), "password": new_password},
    )
    assert r.status_code == 204, r.text
    await api.login(person.email, new_password)
    # Fence: the known address's email is in; the unknown one's request made no email.
    assert await api.mails(ghost) == []
