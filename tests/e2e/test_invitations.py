"""Invitations end to end: invite, the emailed link, accept (signed in or registering),
revoke, remind, expiry, a 500-address paste and two admins racing."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.support import (
    PASSWORD,
    Api,
    Person,
    accept,
    backdate_invitation,
    checked_email,
    confirm_email,
    invitation_status,
    invitation_token,
    invite,
    invite_ok,
    invited_person,
    list_invitations,
    problem_type,
    random_email,
    registration,
    registration_outcome,
    second_admin,
    settle,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

HOUR = 3600
TTL = 5  # seconds: the expiry test's invitation lifetime


def _dept_name() -> str:
    return f"Station {uuid.uuid4().hex[:6]}"


async def test_invited_person_registers_through_the_emailed_link_and_joins(api: Api) -> None:
    name = _dept_name()
    admin = await api.create_department(name)
    email = random_email("invitee")

    [result] = await invite_ok(api, admin, [email], role="officer")

    assert result["outcome"] == "invited" and result["email"] == email, result
    [listed] = await list_invitations(api, admin, "pending")
    assert listed["invitation_id"] == result["invitation_id"]
    assert (listed["email"], listed["role"], listed["status"]) == (email, "officer", "pending")
    assert listed["accepted_at"] is None and listed["account_id"] is None
    assert listed["last_sent_at"] and listed["expires_at"] > listed["created_at"]
    [mail] = await api.wait_mail(email)
    assert name in mail["subject"] and name in mail["text"] and name in mail["html"]
    token = invitation_token(mail)

    outcome = await settle(api, await accept(api, token, body=registration(email, "Rita Reg")))

    assert outcome.status_code == 201, outcome.body
    assert outcome.body["role"] == "officer" and outcome.body["status"] == "joined"
    account_id = outcome.body["account_id"]
    access = await api.login(email)  # the password chosen while registering works
    me = await api.http.get(
        api.url("identity", "/v1/me"), headers={"Authorization": f"Bearer {access}"}
    )
    assert me.json() == {"account_id": account_id, "email": email, "name": "Rita Reg"}
    row = await api.wait_reported(admin, email)
    assert (row["account_id"], row["role"], row["name"]) == (account_id, "officer", "Rita Reg")
    [welcome] = await wait_mail_matching(api, email, subject_has("welcome", name))
    assert welcome["html"] and "/set-password" not in welcome["text"]
    [accepted] = await list_invitations(api, admin, "accepted")
    assert accepted["invitation_id"] == result["invitation_id"]
    assert accepted["account_id"] == account_id and accepted["accepted_at"]
    assert await list_invitations(api, admin, "pending") == []

    # The link is single use, for whoever tries it next.
    stranger = random_email("stranger")
    r = await accept(api, token, body=registration(stranger))
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text
    r = await accept(api, token, person=Person(account_id, email, access))
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text

    # Fence: an add's credentials email goes through identity and notifications; by the
    # time it is in, a set-password email for the registered account would be too.
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence)
    mails = await api.mails(email)
    assert len(mails) == 2, [m["subject"] for m in mails]  # the invitation and the welcome
    assert not any("/set-password" in m["text"] for m in mails), "registered: no set-password"
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": stranger, "password": PASSWORD}
    )
    assert r.status_code == 401, "the refused registration made no account"


async def test_signed_in_accept_joins_that_account_whatever_its_email(api: Api) -> None:
    home = await api.create_department()
    person = await invited_person(api, home, name="Otto Other")
    name = _dept_name()
    admin = await api.create_department(name)
    work = random_email("work-address")
    [invited] = await invite_ok(api, admin, [work])
    assert invited["outcome"] == "invited"
    [mail] = await api.wait_mail(work)
    token = invitation_token(mail)

    r = await accept(api, token, person=person)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "department_id": admin.department_id,
        "account_id": person.account_id,
        "role": "member",
        "status": "joined",
    }
    row = await api.wait_reported(admin, person.email)
    assert row["account_id"] == person.account_id and row["name"] == "Otto Other"
    emails = [u["email"].lower() for u in await api.report_users(admin)]
    assert work.lower() not in emails, "no second person for the invited address"
    [accepted] = await list_invitations(api, admin, "accepted")
    assert (accepted["email"], accepted["account_id"]) == (work, person.account_id)
    # The welcome goes to the account that joined.
    await wait_mail_matching(api, person.email, subject_has("welcome", name))

    r = await accept(api, token, person=person)
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text
    r = await accept(api, token, body=registration(work))
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text
    # Still in the home department too: one account, two departments.
    assert await api.wait_reported(home, person.email)


async def test_a_member_with_a_valid_link_is_told_so_and_nothing_changes(api: Api) -> None:
    name = _dept_name()
    admin = await api.create_department(name)
    person = await invited_person(api, admin)

    [again] = await invite_ok(api, admin, [person.email.upper()])
    assert again["outcome"] == "already_member" and not again.get("invitation_id"), again

    alias = random_email("alias")
    [result] = await invite_ok(api, admin, [alias])
    token = invitation_token((await api.wait_mail(alias))[0])
    r = await accept(api, token, person=person)
    assert r.status_code == 409 and problem_type(r) == "already-member", r.text
    assert name in r.json()["detail"] and "already a member" in r.json()["detail"].lower()
    assert await invitation_status(api, admin, result["invitation_id"]) == "pending"

    # Registering with an address that has an account: answered as for any address, and
    # its owner is emailed the invitation's link to sign in and accept with.
    r = await accept(api, token, body=registration(person.email))
    checked_email(r, person.email)
    [notice] = await wait_mail_matching(api, person.email, subject_has("someone tried", name))
    assert invitation_token(notice) == token and "sign in" in notice["text"].lower()

    async def released() -> bool:
        # The claim is let go once identity has answered: a registration may use it again.
        r = await accept(api, token, body=registration(random_email("after")))
        return r.status_code == 202

    await wait_for(released, timeout=30, what="the invitation free again")
    assert await invitation_status(api, admin, result["invitation_id"]) == "pending"

    weak = {"name": "Wes Weak", "email": random_email("weak"), "password": "short"}
    r = await accept(api, token, body=weak)
    assert r.status_code == 422 and problem_type(r) == "weak-password", r.text
    assert "password" in [e["field"] for e in r.json()["errors"]]
    r = await accept(api, "not-a-real-token", body=registration(random_email("nobody")))
    assert r.status_code == 400 and problem_type(r) == "invitation-invalid", r.text
    r = await accept(api, token)  # neither signed in nor registering
    assert r.status_code == 422, r.text
    assert await invitation_status(api, admin, result["invitation_id"]) == "pending"

    # The refusals left the membership as it was: one row, same role.
    rows = [u for u in await api.report_users(admin) if u["account_id"] == person.account_id]
    assert [(u["role"], u["status"]) for u in rows] == [("member", "active")]


async def test_a_revoked_invitation_stops_working_and_never_blocks_a_new_one(api: Api) -> None:
    admin = await api.create_department()
    email = random_email("revoked")
    [first] = await invite_ok(api, admin, [email])
    token = invitation_token((await api.wait_mail(email))[0])
    url = api.url(
        "membership", f"/v1/departments/{admin.department_id}/invitations/{first['invitation_id']}"
    )

    r = await api.http.delete(url, headers=admin.headers)

    assert r.status_code == 204, r.text
    r = await accept(api, token, body=registration(email))
    assert r.status_code == 400 and problem_type(r) == "invitation-revoked", r.text
    r = await api.http.delete(url, headers=admin.headers)
    assert r.status_code == 409 and problem_type(r) == "invitation-not-pending", r.text
    r = await api.http.post(url + "/reminders", headers=admin.headers)
    assert r.status_code == 409 and problem_type(r) == "invitation-not-pending", r.text
    [revoked] = await list_invitations(api, admin, "revoked")
    assert revoked["invitation_id"] == first["invitation_id"]
    r = await api.http.delete(
        api.url("membership", f"/v1/departments/{admin.department_id}/invitations/{uuid.uuid4()}"),
        headers=admin.headers,
    )
    assert r.status_code == 404, r.text

    [second] = await invite_ok(api, admin, [email])

    assert second["outcome"] == "invited" and second["invitation_id"] != first["invitation_id"]
    mails = await api.wait_mail(email, count=2)
    fresh = invitation_token(mails[-1])
    assert fresh != token
    outcome = await settle(api, await accept(api, fresh, body=registration(email)))
    assert outcome.status_code == 201, outcome.body
    await api.wait_reported(admin, email)
    r = await accept(api, token, body=registration(random_email("late")))
    assert r.status_code == 400 and problem_type(r) == "invitation-revoked", r.text


async def test_reminders_resend_the_same_link_at_most_once_an_hour(
    api: Api, controllable: Any
) -> None:
    name = _dept_name()
    admin = await api.create_department(name)
    email = random_email("remind")
    [result] = await invite_ok(api, admin, [email])
    invitation_id = result["invitation_id"]
    token = invitation_token((await api.wait_mail(email))[0])
    url = api.url(
        "membership",
        f"/v1/departments/{admin.department_id}/invitations/{invitation_id}/reminders",
    )

    # The invitation itself was just sent: too soon.
    r = await api.http.post(url, headers=admin.headers)
    assert r.status_code == 429 and problem_type(r) == "reminder-too-soon", r.text
    assert 0 < int(r.headers["retry-after"]) <= HOUR
    [again] = await invite_ok(api, admin, [email])
    assert (again["outcome"], again["invitation_id"]) == ("already_invited", invitation_id)

    # An hour later (the invitation's clock is moved back) the admin can remind.
    database = controllable.database_url("membership")
    await backdate_invitation(database, invitation_id, 2 * HOUR)
    r = await api.http.post(url, headers=admin.headers)
    assert r.status_code == 202, r.text
    [reminder] = await wait_mail_matching(api, email, subject_has("reminder", name))
    assert invitation_token(reminder) == token, "a reminder carries the same link"
    r = await api.http.post(url, headers=admin.headers)
    assert r.status_code == 429 and problem_type(r) == "reminder-too-soon", r.text

    # Pasting a pending address reminds too, under the same hourly rule.
    await backdate_invitation(database, invitation_id, 2 * HOUR)
    [pasted] = await invite_ok(api, admin, f"Rem Inder <{email}>")
    assert (pasted["outcome"], pasted["invitation_id"]) == ("already_invited", invitation_id)
    reminders = await wait_mail_matching(api, email, subject_has("reminder"), count=2)
    assert invitation_token(reminders[-1]) == token
    [pasted] = await invite_ok(api, admin, [email])
    assert pasted["outcome"] == "already_invited"
    fence = random_email("fence")
    await invite_ok(api, admin, [fence])
    await api.wait_mail(fence)
    assert len(await api.mails(email)) == 3, "the invitation and two reminders, no more"

    outcome = await settle(api, await accept(api, token, body=registration(email)))
    assert outcome.status_code == 201, outcome.body
    r = await api.http.post(url, headers=admin.headers)
    assert r.status_code == 409 and problem_type(r) == "invitation-not-pending", r.text
    r = await api.http.post(url.replace(invitation_id, str(uuid.uuid4())), headers=admin.headers)
    assert r.status_code == 404, r.text


async def test_an_expired_invitation_is_listed_refused_and_can_be_replaced(api: Api) -> None:
    admin = await api.create_department()
    dept_url = api.url("membership", f"/v1/departments/{admin.department_id}")
    # Short, yet long enough for the invitation email to go out before the link lapses
    # (notifications does not send a link that has already expired).
    r = await api.http.patch(dept_url, json={"invitation_ttl_s": TTL}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["invitation_ttl_s"] == TTL
    assert r.json()["department_id"] == admin.department_id
    r = await api.http.get(dept_url, headers=admin.headers)
    assert r.status_code == 200 and r.json()["invitation_ttl_s"] == TTL, r.text
    email = random_email("expiring")
    [first] = await invite_ok(api, admin, [email])
    token = invitation_token((await api.wait_mail(email))[0])
    [listed] = await list_invitations(api, admin)
    lifetime = datetime.fromisoformat(listed["expires_at"]) - datetime.fromisoformat(
        listed["created_at"]
    )
    assert lifetime.total_seconds() == pytest.approx(TTL, abs=0.5)

    async def expired() -> bool:
        return await invitation_status(api, admin, first["invitation_id"]) == "expired"

    await wait_for(expired, timeout=20, interval=0.25, what="the invitation listed as expired")

    r = await accept(api, token, body=registration(email))
    assert r.status_code == 400 and problem_type(r) == "invitation-expired", r.text
    [listed] = await list_invitations(api, admin, "expired")
    assert listed["invitation_id"] == first["invitation_id"]
    assert await list_invitations(api, admin, "pending") == []
    r = await api.http.post(
        f"{dept_url}/invitations/{first['invitation_id']}/reminders", headers=admin.headers
    )
    assert r.status_code == 409 and problem_type(r) == "invitation-not-pending", r.text

    r = await api.http.patch(dept_url, json={"invitation_ttl_s": HOUR}, headers=admin.headers)
    assert r.status_code == 200, r.text
    [second] = await invite_ok(api, admin, [email])

    assert second["outcome"] == "invited" and second["invitation_id"] != first["invitation_id"]
    fresh = invitation_token((await api.wait_mail(email, count=2))[-1])
    outcome = await settle(api, await accept(api, fresh, body=registration(email)))
    assert outcome.status_code == 201, outcome.body
    await api.wait_reported(admin, email)
    statuses = {i["invitation_id"]: i["status"] for i in await list_invitations(api, admin)}
    assert statuses == {first["invitation_id"]: "expired", second["invitation_id"]: "accepted"}
    r = await accept(api, token, body=registration(random_email("late")))
    assert r.status_code == 400 and problem_type(r) == "invitation-expired", r.text


INVALID = (
    "not-an-email-{t}",
    "{t}@",
    "@{t}.example.org",
    "a{t}@@example.org",
    "b{t}@example..org",
    "c{t}@-example.org",
    "d{t}@example",
    "e{t}@exa_mple.org",
)


async def test_a_paste_of_500_mixed_addresses_gives_each_its_outcome_and_one_email(
    api: Api,
) -> None:
    admin = await api.create_department()
    tag = uuid.uuid4().hex[:8]
    rng = random.Random(tag)
    members = [admin.email] + [random_email("member") for _ in range(3)]
    for email in members[1:]:
        assert (await api.add_member(admin, email)).status_code == 201
    pending = [random_email("pending") for _ in range(4)]
    pending_ids = {
        r["email"].lower(): r["invitation_id"] for r in await invite_ok(api, admin, pending)
    }
    revoked = [random_email("revoked") for _ in range(2)]
    for result in await invite_ok(api, admin, revoked):
        await api.wait_mail(result["email"])  # sent before it is revoked: counted below
        r = await api.http.delete(
            api.url(
                "membership",
                f"/v1/departments/{admin.department_id}/invitations/{result['invitation_id']}",
            ),
            headers=admin.headers,
        )
        assert r.status_code == 204
    for email in pending + members[1:]:
        await api.wait_mail(email)
    fresh = [f"new{i:03d}-{tag}@example.org" for i in range(455)]
    invalid = [pattern.format(t=tag) for pattern in INVALID]

    # (the text as pasted, the address it stands for); duplicates are added below.
    entries: list[tuple[str, str]] = []
    for i, email in enumerate(fresh):
        text = f"New Person {i} <{email}>" if i % 10 == 3 else email
        text = f'"Person, New {i}" <{email}>' if i % 50 == 7 else text
        entries.append((text if i % 17 else text.upper(), email))
    entries += [(e, e) for e in members[:2]] + [(f"Mem Ber <{members[2]}>", members[2])]
    entries += [(members[3].upper(), members[3])]
    entries += [(e, e) for e in pending[:3]] + [(f"Pen Ding <{pending[3]}>", pending[3])]
    entries += [(e, e) for e in revoked]
    entries += [(e, e) for e in invalid]
    rng.shuffle(entries)
    repeats = rng.sample(entries, 27)
    for text, email in repeats:
        # The same address again, as typed differently.
        entries.insert(
            rng.randrange(len(entries) + 1), (email.upper() if "@" in email else text, email)
        )
    assert len(entries) == 500
    paste = ""
    for text, _ in entries:
        named = "<" in text
        separator = rng.choice(
            [",", ";", "\n", ", ", "; ", "\r\n"] + ([] if named else [" ", "\t"])
        )
        paste += (separator if paste else "") + text
    expected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _, email in entries:
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        key = email.lower()
        if email in invalid:
            outcome = "invalid"
        elif key in {m.lower() for m in members}:
            outcome = "already_member"
        elif key in pending_ids:
            outcome = "already_invited"
        else:
            outcome = "invited"
        expected.append((key, outcome))
    invited = {key for key, outcome in expected if outcome == "invited"}
    assert len(invited) == 457 and len(expected) == 473
    watched = {e.lower() for e in members + pending + revoked + invalid} | invited

    async def mail_counts() -> dict[str, int]:
        counts = dict.fromkeys(watched, 0)
        for mail in await api.mails():
            for to in mail["to"]:
                if to.lower() in counts:
                    counts[to.lower()] += 1
        return counts

    before = await mail_counts()

    r = await invite(api, admin, paste)

    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["email"].lower(), x["outcome"]) for x in results] == expected
    for x in results:
        if x["outcome"] == "invalid":
            assert x["reason"], x
        if x["outcome"] == "already_invited":
            assert x["invitation_id"] == pending_ids[x["email"].lower()]
        if x["outcome"] == "invited":
            assert x["invitation_id"]
    ids = {x["invitation_id"] for x in results if x["outcome"] == "invited"}
    assert len(ids) == 457
    listed = {i["invitation_id"] for i in await list_invitations(api, admin, "pending")}
    assert listed == ids | set(pending_ids.values())

    async def all_mailed() -> dict[str, int] | None:
        counts = await mail_counts()
        arrived = sum(counts[a] - before[a] for a in invited)
        return counts if arrived >= len(invited) else None

    await wait_for(all_mailed, timeout=120, interval=0.5, what="457 invitation emails")
    fence = random_email("fence")
    await invite_ok(api, admin, [fence])
    await api.wait_mail(fence)
    after = await mail_counts()
    assert {a: after[a] - before[a] for a in watched} == {
        a: 1 if a in invited else 0 for a in watched
    }, "one email per invited address; none to members, pending or invalid ones"
    for mail in await api.mails():
        if invited & {to.lower() for to in mail["to"]}:
            subject = mail["subject"].lower()
            assert "invited" in subject and "reminder" not in subject, mail["subject"]


async def test_paste_limits_and_forms(api: Api) -> None:
    admin = await api.create_department()
    too_many = [f"p{i}-{uuid.uuid4().hex[:6]}@example.org" for i in range(501)]
    for body in ([], "", " ,; \n", too_many):
        r = await invite(api, admin, body)
        assert r.status_code == 422, r.text
        assert "emails" in [e["field"] for e in r.json()["errors"]], r.text
    assert await list_invitations(api, admin) == [], "a refused paste invites nobody"
    a, b, c = (random_email(x) for x in "abc")

    results = await invite_ok(api, admin, f'"Lee, Bo" <{a}>;{b}\n{c.upper()}, {b.upper()}')

    assert [(x["email"].lower(), x["outcome"]) for x in results] == [
        (a, "invited"),
        (b, "invited"),
        (c, "invited"),
    ]
    results = await invite_ok(api, admin, [a, f"Bo <{b}>", "nope"], role="officer")
    assert [x["outcome"] for x in results] == ["already_invited", "already_invited", "invalid"]


@pytest.mark.parametrize("order", ["same order", "reversed"])
async def test_two_admins_inviting_the_same_addresses_at_once_make_one_invitation_each(
    api: Api, order: str
) -> None:
    admin = await api.create_department()
    other = await second_admin(api, admin)
    addresses = [random_email("race") for _ in range(10)]
    pasted = addresses if order == "same order" else addresses[::-1]

    first, second = await asyncio.gather(invite(api, admin, addresses), invite(api, other, pasted))

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    theirs = {x["email"]: x for x in second.json()["results"]}
    ids = {}
    for a in first.json()["results"]:
        b = theirs[a["email"]]
        assert sorted([a["outcome"], b["outcome"]]) == ["already_invited", "invited"], (a, b)
        assert a["invitation_id"] == b["invitation_id"] and a["invitation_id"], (a, b)
        ids[a["email"]] = a["invitation_id"]
    assert len(ids) == len(addresses)
    pending = await list_invitations(api, admin, "pending")
    assert sorted((i["email"], i["invitation_id"]) for i in pending) == sorted(ids.items())
    for email in addresses:
        await api.wait_mail(email)
    fence = random_email("fence")
    await invite_ok(api, admin, [fence])
    await api.wait_mail(fence)
    for email in addresses:
        assert len(await api.mails(email)) == 1, email


async def test_one_person_accepting_two_invitations_at_once_gets_one_membership(
    api: Api,
) -> None:
    home = await api.create_department()
    person = await invited_person(api, home)
    # A few departments at once, so the two accepts really overlap in at least one.
    admins = [await api.create_department() for _ in range(3)]
    tokens: list[list[str]] = []
    for admin in admins:
        aliases = [random_email("alias-a"), random_email("alias-b")]
        await invite_ok(api, admin, aliases)
        tokens.append([invitation_token((await api.wait_mail(a))[0]) for a in aliases])

    responses = await asyncio.gather(
        *(accept(api, t, person=person) for pair in tokens for t in pair)
    )

    for admin, pair in zip(admins, zip(responses[::2], responses[1::2], strict=True), strict=True):
        codes = sorted(r.status_code for r in pair)
        assert codes == [200, 409], [r.text for r in pair]
        loser = next(r for r in pair if r.status_code == 409)
        assert problem_type(loser) == "already-member"
        statuses = sorted(i["status"] for i in await list_invitations(api, admin))
        assert statuses == ["accepted", "pending"], "the refused invitation stays usable"
    for admin in admins:
        await api.wait_reported(admin, person.email)
        fence = random_email("fence")
        assert (await api.add_member(admin, fence)).status_code == 201
        await api.wait_reported(admin, fence)
        rows = [u for u in await api.report_users(admin) if u["account_id"] == person.account_id]
        assert len(rows) == 1


async def test_registering_with_another_address_joins_once_that_address_is_confirmed(
    api: Api,
) -> None:
    name = _dept_name()
    admin = await api.create_department(name)
    invited = random_email("invited")
    [result] = await invite_ok(api, admin, [invited], role="officer")
    token = invitation_token((await api.wait_mail(invited))[0])
    other = random_email("other-address")

    r = await accept(api, token, body=registration(other, "Otto Other"))

    checked_email(r, other)
    r = await accept(api, token, body=registration(random_email("second")))
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text
    assert await invitation_status(api, admin, result["invitation_id"]) == "pending"
    confirmed = await confirm_email(api, other)
    outcome = await registration_outcome(api, confirmed["request_id"])
    assert outcome["status"] == "succeeded", outcome
    assert outcome["result"]["role"] == "officer"
    row = await api.wait_reported(admin, other)
    assert (row["account_id"], row["role"]) == (confirmed["account_id"], "officer")
    [accepted] = await list_invitations(api, admin, "accepted")
    assert accepted["account_id"] == confirmed["account_id"]
    assert await api.login(other)


async def test_ten_anonymous_accepts_of_one_invitation_at_once_make_one_account(
    api: Api,
) -> None:
    # The finding: one joined, nine got 400 /invitation-used, yet ten accounts existed,
    # and their addresses could not be added any more.
    admin = await api.create_department()
    invited = random_email("contested")
    await invite_ok(api, admin, [invited])
    token = invitation_token((await api.wait_mail(invited))[0])
    emails = [random_email(f"racer{n}") for n in range(10)]

    responses = await asyncio.gather(*(accept(api, token, body=registration(e)) for e in emails))

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [400] * 9, [r.text for r in responses]
    assert all(problem_type(r) == "invitation-used" for r in responses if r.status_code == 400)
    [winner] = [e for e, r in zip(emails, responses, strict=True) if r.status_code == 202]
    losers = [e for e in emails if e != winner]
    await wait_mail_matching(api, winner, subject_has("confirm your email"))
    for email in losers:
        r = await api.http.post(
            api.url("identity", "/v1/auth/token"), json={"email": email, "password": PASSWORD}
        )
        assert r.status_code == 401, f"{email} has an account: {r.text}"
    # Their addresses are as free as before: an admin adds one at once.
    r = await api.add_member(admin, losers[0])
    assert r.status_code == 201, r.text
    # The winner's account exists, unconfirmed: its owner confirms and joins.
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": winner, "password": PASSWORD}
    )
    assert r.status_code == 403 and problem_type(r) == "email-not-confirmed", r.text
    outcome = await registration_outcome(api, (await confirm_email(api, winner))["request_id"])
    assert outcome["status"] == "succeeded", outcome


async def test_a_name_pasted_with_the_address_greets_and_lists_the_invitee(api: Api) -> None:
    admin = await api.create_department()
    named, plain = random_email("named"), random_email("plain")

    results = await invite_ok(api, admin, f'"Two, Sam" <{named}>; {plain}')

    assert [(r["email"], r["outcome"]) for r in results] == [
        (named, "invited"),
        (plain, "invited"),
    ]
    [mail] = await api.wait_mail(named)
    assert mail["text"].startswith("Hello Two, Sam,\n"), mail["text"][:80]
    assert "<p>Hello Two, Sam,</p>" in mail["html"]
    [unnamed] = await api.wait_mail(plain)
    assert unnamed["text"].startswith("Hello,\n"), unnamed["text"][:80]
    listed = {i["email"]: i["name"] for i in await list_invitations(api, admin, "pending")}
    assert listed == {named: "Two, Sam", plain: None}

    # The link's page reads whom it is for, to fill the registration form with.
    token = invitation_token(mail)
    r = await api.http.get(api.url("membership", f"/v1/invitations/{token}"))
    assert r.status_code == 200 and r.json() == {"email": named, "name": "Two, Sam"}, r.text
    r = await api.http.get(api.url("membership", f"/v1/invitations/{invitation_token(unnamed)}"))
    assert r.status_code == 200 and r.json() == {"email": plain, "name": None}, r.text
    r = await api.http.get(api.url("membership", f"/v1/invitations/{token}x"))
    assert r.status_code == 400 and problem_type(r) == "invitation-invalid", r.text
    outcome = await settle(api, await accept(api, token, body=registration(named, "Sam Two")))
    assert outcome.status_code == 201, outcome.body
    r = await api.http.get(api.url("membership", f"/v1/invitations/{token}"))
    assert r.status_code == 400 and problem_type(r) == "invitation-used", r.text
