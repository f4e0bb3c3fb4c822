"""The self-registration link end to end: get, rotate, switch off, expiry, allowed domains,
and joining through it (registering, or signed in)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    invited_person,
    join,
    join_token,
    problem_type,
    random_email,
    registration,
    settle,
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


async def _no_account(api: Api, email: str) -> bool:
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": email, "password": PASSWORD}
    )
    return r.status_code == 401


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

    # Someone new registers through it.
    email = random_email("self")
    outcome = await settle(api, await join(api, token, body=registration(email, "Sam Self")))
    assert outcome.status_code == 201, outcome.body
    assert (outcome.body["role"], outcome.body["status"]) == ("officer", "joined")
    account_id = outcome.body["account_id"]
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
    outcome = await settle(api, await join(api, token, body=registration(other.email)))
    assert outcome.status_code == 409 and outcome.body["type"].endswith("/account-exists")
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
    outcome = await settle(api, await join(api, fresh, body=registration(newcomer)))
    assert outcome.status_code == 201 and outcome.body["role"] == "member", outcome.body

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
    outcome = await settle(api, await join(api, token, body=registration(inside)))
    assert outcome.status_code == 201, outcome.body
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
