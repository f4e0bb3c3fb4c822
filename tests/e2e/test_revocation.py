"""Revoked access tokens: after a password reset or "sign out everywhere", the old
tokens get 401 on every service (once the cut-off has reached it) and a token
obtained afterwards, even in the same second, works everywhere."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from tests.support import (
    PASSWORD,
    Admin,
    Api,
    bearer,
    link_token,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

# Generous: the cut-off travels by event; normally it arrives within a second.
PROPAGATION_S = 60.0


def _probes(admin: Admin) -> dict[str, str]:
    """One route per service that the department's admin may call (200)."""
    d = admin.department_id
    return {
        "identity": "/v1/me",
        "membership": f"/v1/departments/{d}",
        "notifications": f"/v1/notifications/departments/{d}/emails",
        "reporting": f"/v1/reports/departments/{d}/users",
    }


async def _status(api: Api, service: str, path: str, token: str) -> int:
    r = await api.http.get(api.url(service, path), headers=bearer(token))
    return r.status_code


async def _wait_everywhere(
    api: Api, admin: Admin, token: str, wanted: Callable[[int], bool], what: str
) -> None:
    """Wait until every service answers ``token`` as ``wanted`` says, within the deadline."""
    for service, path in _probes(admin).items():

        async def probe(service: str = service, path: str = path) -> int | None:
            status = await _status(api, service, path, token)
            return status if wanted(status) else None

        await wait_for(probe, timeout=PROPAGATION_S, what=f"{service} {path}: {what}")


async def _works_everywhere(api: Api, admin: Admin, token: str) -> None:
    # Reporting learns of a new department's admin by event: wait for it to.
    await _wait_everywhere(api, admin, token, lambda s: s == 200, "200 for a valid token")


async def _refused_everywhere(api: Api, admin: Admin, token: str) -> None:
    await _wait_everywhere(api, admin, token, lambda s: s == 401, "401 for a revoked token")


async def test_a_password_reset_revokes_the_tokens_issued_before_it(api: Api) -> None:
    admin = await api.create_department()
    old = admin.token
    await _works_everywhere(api, admin, old)

    r = await api.http.post(
        api.url("identity", "/v1/password/reset-requests"), json={"email": admin.email}
    )
    assert r.status_code == 202, r.text
    [mail] = await wait_mail_matching(api, admin.email, subject_has("reset"))
    new_password = PASSWORD + " after reset"
    r = await api.http.post(
        api.url("identity", "/v1/password/set"),
        json={"token": link_token(mail), "password": new_password},
    )
    assert r.status_code == 204, r.text
    # Identity keeps its cut-off in the transaction that set the password: at once.
    assert await _status(api, "identity", "/v1/me", old) == 401
    new = await api.login(admin.email, new_password)
    assert await _status(api, "identity", "/v1/me", new) == 200

    await _refused_everywhere(api, admin, old)
    # The cut-off has reached every service, and the new token is still good there.
    for service, path in _probes(admin).items():
        assert await _status(api, service, path, new) == 200, service
        assert await _status(api, service, path, old) == 401, service


async def test_sign_out_everywhere_revokes_every_token_of_the_account(api: Api) -> None:
    admin = await api.create_department()
    other_device = await api.login(admin.email)
    bystander = await api.create_department()
    await _works_everywhere(api, admin, admin.token)
    await _works_everywhere(api, bystander, bystander.token)

    r = await api.http.post(
        api.url("identity", "/v1/me/sign-out-everywhere"), headers=admin.headers
    )
    assert r.status_code == 204, r.text
    signed_out_at = time.time()
    # Signing in again right away (most often in the same second) gives a good token.
    fresh = await api.login(admin.email)
    iat = jwt.decode(fresh, options={"verify_signature": False})["iat"]
    assert isinstance(iat, float) and iat >= signed_out_at - 5

    assert await _status(api, "identity", "/v1/me", admin.token) == 401
    assert await _status(api, "identity", "/v1/me", fresh) == 200
    await _refused_everywhere(api, admin, admin.token)
    await _refused_everywhere(api, admin, other_device)
    for service, path in _probes(admin).items():
        assert await _status(api, service, path, fresh) == 200, service
    # Someone else's tokens are untouched.
    for service, path in _probes(bystander).items():
        assert await _status(api, service, path, bystander.token) == 200, service

    # The revoked token cannot sign out again, nor do anything else.
    r = await api.http.post(
        api.url("identity", "/v1/me/sign-out-everywhere"), headers=admin.headers
    )
    assert r.status_code == 401, r.text


async def test_sign_out_everywhere_needs_an_account(api: Api) -> None:
    r = await api.http.post(api.url("identity", "/v1/me/sign-out-everywhere"))
    assert r.status_code == 401, r.text
    r = await api.http.post(
        api.url("identity", "/v1/me/sign-out-everywhere"),
        headers=bearer(api.keys.operator_token()),
    )
    assert r.status_code == 404, r.text
