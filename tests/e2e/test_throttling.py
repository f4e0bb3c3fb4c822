"""Throttling end to end: sign-in per account and per client address, setting a
password, reset requests, accepting invitations and joining through a link.

Every test sends its requests from client addresses of its own (``X-Forwarded-For``,
which the stack trusts from loopback as it trusts the console), so the budgets of
one test are never another's. A lock cannot be waited out in a test: where a test
needs one to end, it ends it in identity's database, as the clock would.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.contracts.email import email_key
from prodigy_users.identity.deps import SIGN_IN_BY_ACCOUNT
from prodigy_users.runtime.throttle_rules import key_of
from tests.support import (
    PASSWORD,
    Api,
    bearer,
    client_address,
    from_address,
    invitation_token,
    invite_ok,
    join_token,
    problem_type,
    random_email,
    registration,
)

pytestmark = pytest.mark.e2e

WRONG = "not the password at all"


async def sign_in(api: Api, email: str, password: str, ip: str) -> httpx.Response:
    return await api.http.post(
        api.url("identity", "/v1/auth/token"),
        json={"email": email, "password": password},
        headers=from_address(ip),
    )


def outcome(r: httpx.Response) -> tuple[int, str]:
    """Status and problem slug (``ok`` for a success)."""
    return (r.status_code, problem_type(r) if r.status_code >= 400 else "ok")


def assert_throttled(r: httpx.Response, *, within: int = 30) -> None:
    assert outcome(r) == (429, "too-many-attempts"), r.text
    assert 1 <= int(r.headers["Retry-After"]) <= within, r.headers
    assert "Try again in" in r.json()["detail"]


async def end_account_lock(stack: Any, email: str) -> None:
    """Make the account's lock end now (what 30 seconds would do)."""
    engine = create_async_engine(stack.database_url("identity"))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                sa.text(
                    "UPDATE throttle_counts SET locked_until = now() - interval '1 second'"
                    " WHERE key = :key"
                ),
                {"key": key_of(SIGN_IN_BY_ACCOUNT.name, email_key(email))},
            )
            assert result.rowcount == 1
    finally:
        await engine.dispose()


async def test_fifty_wrong_passwords_lock_the_account_and_then_the_right_one_waits_too(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    ip = client_address()
    answers = [await sign_in(api, admin.email, WRONG, ip) for _ in range(50)]
    assert [outcome(r) for r in answers[:5]] == [(401, "invalid-credentials")] * 5
    for r in answers[5:]:
        assert_throttled(r)
    # The right password during the lock: refused like any other attempt, and
    # from another address too (the account is locked, not the address).
    assert_throttled(await sign_in(api, admin.email, PASSWORD, ip))
    assert_throttled(await sign_in(api, admin.email, PASSWORD, client_address()))
    await end_account_lock(controllable, admin.email)
    ok = await sign_in(api, admin.email, PASSWORD, ip)
    assert ok.status_code == 200, ok.text
    # Signing in forgot the failures: a mistake now is an ordinary 401.
    assert outcome(await sign_in(api, admin.email, WRONG, ip)) == (401, "invalid-credentials")


async def test_an_address_with_no_account_gets_exactly_the_same_answers(api: Api) -> None:
    admin = await api.create_department()
    nobody = random_email("nobody")
    seen = {}
    for email in (admin.email, nobody):
        ip = client_address()
        answers = [await sign_in(api, email, WRONG, ip) for _ in range(12)]
        seen[email] = [outcome(r) for r in answers]
        assert all("Retry-After" in r.headers for r in answers[5:])
    assert seen[admin.email] == seen[nobody]
    assert seen[nobody] == [(401, "invalid-credentials")] * 5 + [(429, "too-many-attempts")] * 7


async def test_one_address_failing_for_many_accounts_is_locked_and_others_are_not(
    api: Api,
) -> None:
    admin = await api.create_department()
    ip = client_address()
    for n in range(50):
        r = await sign_in(api, random_email("spray"), WRONG, ip)
        assert outcome(r) == (401, "invalid-credentials"), n
    # Locked: even a real account with its right password, from that address...
    assert_throttled(await sign_in(api, admin.email, PASSWORD, ip))
    # ...while the same person elsewhere signs in (their account was never failed).
    assert (await sign_in(api, admin.email, PASSWORD, client_address())).status_code == 200


async def test_successful_sign_ins_do_not_use_up_an_address(api: Api) -> None:
    # An office behind one address: many people signing in are not failures.
    admin = await api.create_department()
    ip = client_address()
    for _ in range(60):
        assert (await sign_in(api, admin.email, PASSWORD, ip)).status_code == 200


async def password_link(api: Api) -> str:
    """A fresh set-password token for a new department's admin (an operator's link)."""
    admin = await api.create_department()
    r = await api.http.post(
        api.url("identity", f"/v1/accounts/{admin.account_id}/password-link"),
        headers=bearer(api.keys.operator_token()),
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def set_password(api: Api, token: str, password: str, ip: str) -> httpx.Response:
    return await api.http.post(
        api.url("identity", "/v1/password/set"),
        json={"token": token, "password": password},
        headers=from_address(ip),
    )


async def test_one_set_password_link_takes_ten_tries(api: Api) -> None:
    token = await password_link(api)
    for n in range(10):
        r = await set_password(api, token, "short", client_address())
        assert outcome(r) == (422, "weak-password"), n
    # Even a good password, from anywhere: the link is locked for now.
    assert_throttled(await set_password(api, token, PASSWORD, client_address()))


async def test_an_address_trying_unknown_links_is_locked(api: Api) -> None:
    ip = client_address()
    for n in range(50):
        r = await set_password(api, f"guess-{n}-{random_email()}", PASSWORD, ip)
        assert outcome(r) == (400, "token-invalid"), n
    token = await password_link(api)
    assert_throttled(await set_password(api, token, PASSWORD, ip))
    assert (await set_password(api, token, PASSWORD, client_address())).status_code == 204


async def test_reset_requests_are_limited_per_address(api: Api) -> None:
    ip = client_address()
    url = api.url("identity", "/v1/password/reset-requests")
    for n in range(20):
        r = await api.http.post(url, json={"email": random_email()}, headers=from_address(ip))
        assert r.status_code == 202, (n, r.text)
    assert_throttled(
        await api.http.post(url, json={"email": random_email()}, headers=from_address(ip))
    )
    other = await api.http.post(url, json={"email": random_email()})
    assert other.status_code == 202


async def accept(api: Api, token: str, body: dict[str, str] | None, ip: str) -> httpx.Response:
    return await api.http.post(
        api.url("membership", f"/v1/invitations/{token}/accept"),
        json=body,
        headers=from_address(ip),
    )


async def join(api: Api, token: str, body: dict[str, str] | None, ip: str) -> httpx.Response:
    return await api.http.post(
        api.url("membership", f"/v1/join/{token}"), json=body, headers=from_address(ip)
    )


def weak(email: str) -> dict[str, str]:
    return {**registration(email), "password": "short"}


async def test_one_invitation_takes_ten_tries(api: Api) -> None:
    admin = await api.create_department()
    email = random_email("invitee")
    [result] = await invite_ok(api, admin, [email])
    assert result["outcome"] == "invited"
    [mail] = await api.wait_mail(email)
    token = invitation_token(mail)
    for n in range(10):
        r = await accept(api, token, weak(email), client_address())
        assert outcome(r) == (422, "weak-password"), n
    assert_throttled(await accept(api, token, registration(email), client_address()))


async def test_an_address_trying_unknown_invitations_or_links_is_locked(api: Api) -> None:
    for call, slug in ((accept, "invitation-invalid"), (join, "registration-link-invalid")):
        ip = client_address()
        for n in range(50):
            r = await call(api, f"no-such-token-{n}", registration(random_email()), ip)
            assert outcome(r) == (400, slug), (call.__name__, n)
        assert_throttled(await call(api, "no-such-token", registration(random_email()), ip))


async def test_a_registration_link_takes_a_hundred_uses_per_quarter_hour(api: Api) -> None:
    admin = await api.create_department()
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        json={},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    token = join_token(r.json()["url"])
    for n in range(100):
        # Weak passwords: refused, nothing made, but every use of the link counts.
        answer = await join(api, token, weak(random_email()), client_address())
        assert outcome(answer) == (422, "weak-password"), n
    assert_throttled(await join(api, token, registration(random_email()), client_address()))
