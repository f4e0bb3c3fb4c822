"""'Add a user' end to end: membership -> identity -> notifications and reporting."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta

import httpx
import pytest

from tests.support import PASSWORD, Admin, Api, Keys, bearer, link_token, random_email

pytestmark = pytest.mark.e2e


async def test_added_user_gets_one_email_sets_password_signs_in_and_is_reported(api: Api) -> None:
    admin = await api.create_department()
    email = random_email("new")

    r = await api.add_member(admin, email, name="Nia New", role="officer")

    assert r.status_code == 201, r.text
    member = r.json()
    assert member["email"] == email and member["role"] == "officer"
    assert member["status"] == "active"
    [mail] = await api.wait_mail(email)
    assert not re.search(r"password\s*[:=]\s*\S", mail["text"], re.IGNORECASE), "no password"
    assert email in mail["text"], "the email names the login address"
    assert mail["html"], "the email has an HTML part"
    token = link_token(mail)

    r = await api.http.post(
        api.url("identity", "/v1/password/set"), json={"token": token, "password": PASSWORD}
    )
    assert r.status_code == 204, r.text
    access = await api.login(email)
    r = await api.http.get(api.url("identity", "/v1/me"), headers=bearer(access))
    assert r.status_code == 200
    assert r.json() == {"account_id": member["account_id"], "email": email, "name": "Nia New"}

    row = await api.wait_reported(admin, email)
    assert row["account_id"] == member["account_id"]
    assert row["role"] == "officer"

    # The link was single use.
    r = await api.http.post(
        api.url("identity", "/v1/password/set"), json={"token": token, "password": PASSWORD + "!"}
    )
    assert r.status_code == 400
    assert r.json()["type"].endswith("/token-used")


async def test_duplicate_email_is_refused_everywhere_and_creates_nothing(api: Api) -> None:
    admin = await api.create_department()
    other = await api.create_department()
    email = random_email("dup")
    first = await api.add_member(admin, email)
    assert first.status_code == 201, first.text
    await api.wait_mail(email)

    # In their own department they are a member already; anywhere else, invite them.
    r = await api.add_member(admin, email, name="Someone Else")
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/already-member")
    for target, address in ((other, email), (other, email.upper())):
        r = await api.add_member(target, address, name="Someone Else")
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["type"].endswith("/account-exists")
        assert "invite" in problem["detail"].lower()
        assert r.headers["content-type"].startswith("application/problem+json")

    # Fence: a later add's email arrives, so any email the refusals caused would be in by now.
    fence = random_email("fence")
    assert (await api.add_member(other, fence)).status_code == 201
    await api.wait_mail(fence)
    await api.wait_reported(other, fence)
    assert len(await api.mails(email)) == 1
    reported = [u for u in await api.report_users(other) if u["email"].lower() == email.lower()]
    assert reported == [], "the refused person is not in the other department"


async def test_twenty_simultaneous_adds_of_one_email_make_one_account(api: Api) -> None:
    # One admin administers twenty departments (an existing account joins as admin).
    first = await api.create_department()
    admins = [first]
    op = bearer(api.keys.operator_token())
    for _ in range(19):
        r = await api.http.post(
            api.url("membership", "/v1/departments"),
            json={"name": "Twin", "admin": {"name": "Ada Admin", "email": first.email}},
            headers=op,
        )
        assert r.status_code == 201, r.text
        assert r.json()["admin_account_id"] == first.account_id
        admins.append(Admin(r.json()["department_id"], first.account_id, first.email, first.token))
    email = random_email("race")

    responses = await asyncio.gather(*(api.add_member(a, email) for a in admins))

    async def settled(r: httpx.Response, admin: Admin) -> int:
        # 202: identity's answer came after the API's 2 s wait (a loaded machine); the
        # operation then says how it ended, as the 201 or the 409 would have.
        if r.status_code != 202:
            return r.status_code
        done = await api.wait_operation(r.json()["operation_url"], admin.headers)
        return 201 if done["status"] == "succeeded" else 409

    codes = await asyncio.gather(*(settled(r, a) for r, a in zip(responses, admins, strict=True)))
    assert sorted(codes) == [201] + [409] * 19, [
        r.text for r in responses if r.status_code not in (201, 202, 409)
    ]
    winner = {"department_id": admins[codes.index(201)].department_id}
    fence = random_email("fence")
    assert (await api.add_member(first, fence)).status_code == 201
    await api.wait_mail(fence)
    assert len(await api.mails(email)) == 1
    # Every department but the winner's sees nobody with that email.
    for admin in admins:
        rows = [u for u in await api.report_users(admin) if u["email"] == email]
        if admin.department_id == winner["department_id"]:
            continue
        assert rows == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Val", "email": "not-an-email", "role": "member"}, "email"),
        ({"name": "  ", "email": "valid@example.org", "role": "member"}, "name"),
        ({"name": "", "email": "valid@example.org", "role": "member"}, "name"),
        ({"name": "Val", "email": "valid@example.org", "role": "captain"}, "role"),
        ({"email": "valid@example.org", "role": "member"}, "name"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    api: Api, body: dict[str, str], field: str
) -> None:
    admin = await api.create_department()
    if body.get("email") == "valid@example.org":
        body = {**body, "email": random_email("bad")}

    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/members"),
        json=body,
        headers=admin.headers,
    )

    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["status"] == 422 and problem["type"].endswith("/validation")
    assert field in [e["field"] for e in problem["errors"]], problem
    # Nothing written: the one add that follows is the department's only new member.
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_reported(admin, fence)
    emails = sorted(u["email"] for u in await api.report_users(admin))
    assert emails == sorted([admin.email, fence])


async def test_malformed_json_and_unknown_department(api: Api) -> None:
    admin = await api.create_department()
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/members"),
        content=b'{"name": "Val", "email": ',
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["type"].endswith("/malformed-json")

    r = await api.http.post(
        api.url("membership", f"/v1/departments/{uuid.uuid4()}/members"),
        json={"name": "Val", "email": random_email(), "role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 404
    assert r.json()["type"].endswith("/department-not-found")

    r = await api.http.post(
        api.url("membership", "/v1/departments/not-a-uuid/members"),
        json={"name": "Val", "email": random_email(), "role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "dept"


async def test_authorization(api: Api, keys: Keys) -> None:
    a = await api.create_department()
    b = await api.create_department()
    url = api.url("membership", f"/v1/departments/{b.department_id}/members")
    body = {"name": "Val", "email": random_email("authz"), "role": "member"}

    assert (await api.http.post(url, json=body)).status_code == 401
    r = await api.http.post(url, json=body, headers=a.headers)
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")

    # A plain member (and an officer) of B cannot add people to B.
    for role in ("member", "officer"):
        email = random_email(role)
        assert (await api.add_member(b, email, role=role)).status_code == 201
        [mail] = await api.wait_mail(email)
        r = await api.http.post(
            api.url("identity", "/v1/password/set"),
            json={"token": link_token(mail), "password": PASSWORD},
        )
        assert r.status_code == 204
        token = await api.login(email)
        assert (await api.http.post(url, json=body, headers=bearer(token))).status_code == 403

    tampered = b.token[:-4] + ("AAAA" if not b.token.endswith("AAAA") else "BBBB")
    assert (await api.http.post(url, json=body, headers=bearer(tampered))).status_code == 401
    expired = keys.token(uuid.UUID(b.account_id), ttl=timedelta(seconds=-60))
    r = await api.http.post(url, json=body, headers=bearer(expired))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert (
        await api.http.post(url, json=body, headers={"Authorization": "Basic eDp5"})
    ).status_code == 401

    # Nothing was added by any refused call.
    rows = [u["email"] for u in await api.report_users(b)]
    assert body["email"] not in rows


async def test_login_does_not_reveal_whether_an_account_exists(api: Api) -> None:
    admin = await api.create_department()
    wrong = await api.http.post(
        api.url("identity", "/v1/auth/token"),
        json={"email": admin.email, "password": "nope-nope-nope"},
    )
    unknown = await api.http.post(
        api.url("identity", "/v1/auth/token"),
        json={"email": random_email("ghost"), "password": "nope-nope-nope"},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "instance"} == {
        k: v for k, v in unknown.json().items() if k != "instance"
    }
