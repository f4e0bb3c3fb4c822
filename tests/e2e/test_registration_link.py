"""The self-registration link end to end: get, rotate, switch off, expiry, allowed domains,
and joining through it (registering, or signed in)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.timing import PairedTimings
from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    checked_email,
    confirm_email,
    confirmation_token,
    invited_person,
    join,
    join_token,
    problem_type,
    random_email,
    registration,
    registration_outcome,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e


def _link_url(api: Api, admin: Admin) -> str:
    return api.url("membership", f"/v1/departments/{admin.department_id}/registration-link")


async def _rotate(api: Api, admin: Admin, **body: Any) -> dict[str, Any]:
    r = await api.http.post(_link_url(api, admin), json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    link: dict[str, Any] = r.json()
    return link


async def _sign_in(api: Api, email: str, password: str = PASSWORD) -> httpx.Response:
    return await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": email, "password": password}
    )


async def _no_account(api: Api, email: str) -> bool:
    return (await _sign_in(api, email)).status_code == 401


async def test_joining_through_the_link_rotating_it_and_switching_it_off(api: Api) -> None:
    name = f"Station {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    r = await api.http.get(_link_url(api, admin), headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["url"] is None and r.json()["enabled"] is False

    link = await _rotate(api, admin, role="officer")

    assert link["enabled"] is True and link["role"] == "officer"
    assert link["expires_at"] is None and link["allowed_domains"] == []
    assert "/join/" in link["url"]
    r = await api.http.get(_link_url(api, admin), headers=admin.headers)
    assert r.json() == link, "the link can be shown again"
    token = join_token(link["url"])

    # Someone new registers through it: they are told to check their email, and nothing
    # takes effect until they use the link it carries.
    email = random_email("self")
    checked_email(await join(api, token, body=registration(email, "Sam Self")), email)
    await wait_mail_matching(api, email, subject_has("confirm your email", name))
    r = await _sign_in(api, email)
    assert r.status_code == 403 and problem_type(r) == "email-not-confirmed", r.text
    assert email in r.json()["detail"]
    confirmed = await confirm_email(api, email)
    assert confirmed["department_id"] == admin.department_id
    outcome = await registration_outcome(api, confirmed["request_id"])
    assert outcome["status"] == "succeeded", outcome
    assert outcome["result"] == {
        "account_id": confirmed["account_id"],
        "status": "joined",
        "role": "officer",
        "department_name": name,
    }
    account_id = confirmed["account_id"]
    sam = Person(account_id, email, await api.login(email))
    row = await api.wait_reported(admin, email)
    assert (row["account_id"], row["role"], row["name"]) == (account_id, "officer", "Sam Self")
    [welcome] = await wait_mail_matching(api, email, subject_has("welcome", name))
    assert welcome["html"] and "/set-password" not in welcome["text"]

    # A member using it again is told so; someone with an account elsewhere signs in and joins.
    r = await join(api, token, person=sam)
    assert r.status_code == 409 and problem_type(r) == "already-member", r.text
    other = await invited_person(api, await api.create_department())
    r = await join(api, token, person=other)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "department_id": admin.department_id,
        "account_id": other.account_id,
        "role": "officer",
        "status": "joined",
    }
    await api.wait_reported(admin, other.email)
    # Registering an address that has an account: the same answer as for a new one,
    # and the owner is emailed the link to sign in with instead.
    checked_email(await join(api, token, body=registration(other.email)), other.email)
    [notice] = await wait_mail_matching(
        api, other.email, subject_has("someone tried to register", name)
    )
    assert f"/join/{token}" in notice["text"] and f"/join/{token}" in notice["html"]
    weak = {"name": "Wes Weak", "email": random_email("weak"), "password": "aaaaaaaaaaaa"}
    r = await join(api, token, body=weak)
    assert r.status_code == 422 and problem_type(r) == "weak-password", r.text

    # Rotating: the old link stops working at once, the new one works.
    rotated = await _rotate(api, admin)
    assert rotated["url"] != link["url"] and rotated["role"] == "member"
    late = random_email("late")
    r = await join(api, token, body=registration(late))
    assert r.status_code == 400 and problem_type(r) == "registration-link-invalid", r.text
    r = await join(api, token, person=await invited_person(api, await api.create_department()))
    assert r.status_code == 400 and problem_type(r) == "registration-link-invalid", r.text
    fresh = join_token(rotated["url"])
    newcomer = random_email("newcomer")
    checked_email(await join(api, fresh, body=registration(newcomer)), newcomer)
    joined = await registration_outcome(api, (await confirm_email(api, newcomer))["request_id"])
    assert joined["result"]["role"] == "member", joined

    # Switched off: nobody joins, and the department shows it off.
    r = await api.http.delete(_link_url(api, admin), headers=admin.headers)
    assert r.status_code == 204, r.text
    r = await api.http.get(_link_url(api, admin), headers=admin.headers)
    assert r.json()["enabled"] is False and r.json()["url"] is None
    refused = random_email("refused")
    r = await join(api, fresh, body=registration(refused))
    assert r.status_code == 400 and problem_type(r) == "registration-link-invalid", r.text
    r = await join(api, "no-such-link", body=registration(refused))
    assert r.status_code == 400 and problem_type(r) == "registration-link-invalid", r.text

    await api.wait_reported(admin, newcomer)
    emails = sorted(u["email"] for u in await api.report_users(admin))
    assert emails == sorted([admin.email, email, other.email, newcomer])
    assert await _no_account(api, late) and await _no_account(api, refused)


async def test_link_expiry_and_allowed_domains(api: Api) -> None:
    admin = await api.create_department()
    tag = uuid.uuid4().hex[:8]
    link = await _rotate(api, admin, allowed_domains=[f"allowed-{tag}.example"])
    assert link["allowed_domains"] == [f"allowed-{tag}.example"]
    token = join_token(link["url"])

    outside = f"out-{tag}@elsewhere.example"
    r = await join(api, token, body=registration(outside))
    assert r.status_code == 403 and problem_type(r) == "email-domain-not-allowed", r.text
    # Signed in with an account whose email is outside the domains: refused as well.
    stranger = await invited_person(api, await api.create_department())
    r = await join(api, token, person=stranger)
    assert r.status_code == 403 and problem_type(r) == "email-domain-not-allowed", r.text
    inside = f"In-{tag}@Allowed-{tag}.example"
    r = await join(api, token, body=registration(inside))
    assert r.status_code == 202 and r.json()["status"] == "check_your_email", r.text
    outcome = await registration_outcome(api, (await confirm_email(api, inside))["request_id"])
    assert outcome["status"] == "succeeded", outcome
    await api.wait_reported(admin, inside)
    assert await _no_account(api, outside)

    expires = datetime.now(UTC) + timedelta(seconds=2)
    link = await _rotate(api, admin, expires_at=expires.isoformat())
    assert datetime.fromisoformat(link["expires_at"]) == expires
    token = join_token(link["url"])

    async def past_expiry() -> bool:
        # Waiting for the clock itself, not for the system to do something.
        return datetime.now(UTC) > expires + timedelta(milliseconds=200)

    await wait_for(past_expiry, timeout=10, what="the link's expiry time to pass")
    late = random_email("late")
    r = await join(api, token, body=registration(late))
    assert r.status_code == 400 and problem_type(r) == "registration-link-expired", r.text
    r = await join(api, token, person=stranger)
    assert r.status_code == 400 and problem_type(r) == "registration-link-expired", r.text
    assert await _no_account(api, late)
    rows = [u["account_id"] for u in await api.report_users(admin)]
    assert stranger.account_id not in rows


async def test_someone_without_the_mailbox_gets_nothing_from_a_domain_limited_link(
    api: Api,
) -> None:
    # The finding: with a link limited to the company's domain and the officer role,
    # anyone registered its CFO's address with a password of their choosing, signed in
    # and read the users table.
    name = f"Acme {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    domain = f"acme-{uuid.uuid4().hex[:8]}.example"
    token = join_token(
        (await _rotate(api, admin, role="officer", allowed_domains=[domain]))["url"]
    )
    cfo = f"cfo@{domain}"
    attacker_password = "the attacker's own passphrase"

    r = await join(api, token, body={"name": "C F O", "email": cfo, "password": attacker_password})

    checked_email(r, cfo)
    await wait_mail_matching(api, cfo, subject_has("confirm your email", name))
    r = await _sign_in(api, cfo, attacker_password)
    assert r.status_code == 403 and problem_type(r) == "email-not-confirmed", r.text
    assert "access_token" not in r.text
    r = await api.http.post(
        api.url("identity", "/v1/email-confirmations"),
        json={"token": "guessed-" + uuid.uuid4().hex, "password": attacker_password},
    )
    assert r.status_code == 400 and problem_type(r) == "token-invalid", r.text
    # Asking for the link again sends it to the mailbox, never to the asker.
    r = await api.http.post(
        api.url("identity", "/v1/email-confirmations/resend"), json={"email": cfo}
    )
    assert r.status_code == 202 and not r.content, r.text
    mails = await wait_mail_matching(
        api, cfo, subject_has("confirm your email", name), count=2, what="confirmations"
    )
    assert all(m["to"] == [cfo] for m in mails)
    # The owner of the mailbox ignores it, or clicks it: without the password the
    # attacker chose, the link confirms nothing.
    r = await api.http.post(
        api.url("identity", "/v1/email-confirmations"),
        json={"token": confirmation_token(mails[-1]), "password": "the cfo's own passphrase"},
    )
    assert r.status_code == 401 and problem_type(r) == "invalid-credentials", r.text
    r = await _sign_in(api, cfo, attacker_password)
    assert r.status_code == 403, r.text
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_reported(admin, fence)
    emails = [u["email"].lower() for u in await api.report_users(admin)]
    assert cfo not in emails

    # The real owner registers: that replaces the unconfirmed registration, and the new
    # link works with their password only.
    owner_password = "the cfo's own passphrase"
    r = await join(api, token, body={"name": "Real CFO", "email": cfo, "password": owner_password})
    checked_email(r, cfo)
    confirmed = await confirm_email(api, cfo, owner_password, count=3)
    joined = await registration_outcome(api, confirmed["request_id"])
    assert joined["status"] == "succeeded" and joined["result"]["role"] == "officer", joined
    assert (await _sign_in(api, cfo, owner_password)).status_code == 200
    r = await _sign_in(api, cfo, attacker_password)
    assert r.status_code == 401 and problem_type(r) == "invalid-credentials", r.text
    row = await api.wait_reported(admin, cfo)
    assert row["name"] == "Real CFO"


async def test_registering_answers_the_same_whether_or_not_the_address_has_an_account(
    api: Api,
) -> None:
    name = f"Station {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    token = join_token((await _rotate(api, admin))["url"])
    existing = await invited_person(api, await api.create_department())
    new = random_email("new")

    known = await join(api, token, body=registration(existing.email))
    unknown = await join(api, token, body=registration(new))

    # The finding: 409 /account-exists for one, 201 for the other.
    assert (known.status_code, unknown.status_code) == (202, 202)
    assert known.json() == {"status": "check_your_email", "email": existing.email}
    assert unknown.json() == {"status": "check_your_email", "email": new}
    assert set(known.headers) - {"date", "x-correlation-id", "content-length"} == set(
        unknown.headers
    ) - {"date", "x-correlation-id", "content-length"}
    # Each address gets what applies to it; neither joined.
    [notice] = await wait_mail_matching(api, existing.email, subject_has("someone tried"))
    assert "nothing was created" in " ".join(notice["text"].split())
    [confirmation] = await wait_mail_matching(api, new, subject_has("confirm your email"))
    assert f"/join/{token}" not in confirmation["text"]
    assert not any("confirm-email" in m["text"] for m in await api.mails(existing.email))
    rows = [u["email"] for u in await api.report_users(admin)]
    assert existing.email not in rows and new not in rows
    # The owner signs in and joins with the link from that email.
    r = await join(api, join_token(f"/join/{token}"), person=existing)
    assert r.status_code == 200 and r.json()["account_id"] == existing.account_id, r.text


async def test_the_answer_takes_as_long_for_an_address_with_an_account_as_for_a_new_one(
    api: Api,
) -> None:
    # Pairs whose two requests each came after the same kind of request (tests/e2e/
    # timing.py says why), so load on the machine hits both sides alike; a sign test
    # bounds how often one side is the slower. With no difference, 30 pairs fall
    # outside 7..23 about once in a thousand runs.
    admin = await api.create_department()
    token = join_token((await _rotate(api, admin))["url"])
    existing = await invited_person(api, await api.create_department())

    async def answered_in(known: bool) -> float:
        email = existing.email if known else random_email("timing")
        started = time.perf_counter()
        r = await join(api, token, body=registration(email))
        elapsed = time.perf_counter() - started
        checked_email(r, email)
        return elapsed

    timings = PairedTimings(answered_in)
    await timings.collect(30)
    known_slower = timings.known_slower()
    assert 7 <= known_slower <= 23, f"the known address was slower in {known_slower}/30"
