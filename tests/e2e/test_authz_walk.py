"""Every operation of every service's OpenAPI document (fetched from the running
services, so a new route is walked without anyone adding it here), called by callers
who must not get through: no token, an expired token, a tampered token, a revoked
token (an admin of the department who signed out everywhere), another department's
admin and a plain member of the department. None of them may get a 2xx
where the route needs more. A route missing from ``RULES`` fails the test: whoever
adds one says who may call it.

Also: an operation an operator started (a department's creation) is not readable
without a token (issue 13, item 10).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.runtime.auth import OPERATOR_SCOPE
from prodigy_users.stack import SERVICES
from tests.support import (
    Admin,
    Api,
    added_person,
    bearer,
    invite_ok,
    random_email,
    second_admin,
    wait_for,
)

pytestmark = pytest.mark.e2e

Rule = Literal["public", "authenticated", "member", "admin", "operator", "requester"]

# Who may call each operation: ``public`` (no token), ``authenticated`` (any valid
# token), ``member`` (a member of the department in the path), ``admin`` (an admin of
# it; reports: an admin or an officer), ``operator`` (the platform's operators),
# ``requester`` (only who started it).
RULES: dict[tuple[str, str, str], Rule] = {
    **{
        (service, "GET", path): "public" for service in SERVICES for path in ("/healthz", "/readyz")
    },
    ("identity", "POST", "/v1/auth/token"): "public",
    ("identity", "GET", "/v1/auth/jwks"): "public",
    ("identity", "POST", "/v1/password/set"): "public",
    ("identity", "POST", "/v1/password/reset-requests"): "public",
    ("identity", "POST", "/v1/email-confirmations"): "public",
    ("identity", "POST", "/v1/email-confirmations/resend"): "public",
    ("identity", "GET", "/v1/me"): "authenticated",
    ("identity", "POST", "/v1/me/sign-out-everywhere"): "authenticated",
    ("identity", "PATCH", "/v1/me"): "authenticated",
    ("identity", "POST", "/v1/me/email-change"): "authenticated",
    ("identity", "POST", "/v1/email-change-confirmations"): "public",
    ("identity", "GET", "/v1/me/addresses"): "authenticated",
    ("identity", "POST", "/v1/me/addresses"): "authenticated",
    ("identity", "DELETE", "/v1/me/addresses/{address_id}"): "authenticated",
    ("identity", "POST", "/v1/address-confirmations"): "public",
    ("identity", "POST", "/v1/accounts/{account}/password-link"): "operator",
    ("identity", "POST", "/v1/accounts/{account}/merges"): "operator",
    ("membership", "POST", "/v1/departments"): "operator",
    ("membership", "GET", "/v1/departments/{dept}"): "admin",
    ("membership", "PATCH", "/v1/departments/{dept}"): "admin",
    ("membership", "POST", "/v1/departments/{dept}/members"): "admin",
    ("membership", "GET", "/v1/operations/{operation}"): "requester",
    ("membership", "PATCH", "/v1/departments/{dept}/members/{account}"): "admin",
    ("membership", "DELETE", "/v1/departments/{dept}/members/{account}"): "admin",
    ("membership", "POST", "/v1/departments/{dept}/members/{account}/password-reset"): "admin",
    ("membership", "GET", "/v1/me/memberships"): "authenticated",
    ("reporting", "GET", "/v1/me/record"): "authenticated",
    ("reporting", "GET", "/v1/me/certificates/{certificate}"): "authenticated",
    ("membership", "POST", "/v1/departments/{dept}/invitations"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/invitations"): "admin",
    ("membership", "POST", "/v1/departments/{dept}/invitations/{invitation}/reminders"): "admin",
    ("membership", "DELETE", "/v1/departments/{dept}/invitations/{invitation}"): "admin",
    ("membership", "POST", "/v1/invitations/{token}/accept"): "public",
    ("membership", "GET", "/v1/invitations/{token}"): "public",
    ("membership", "GET", "/v1/departments/{dept}/registration-link"): "admin",
    ("membership", "POST", "/v1/departments/{dept}/registration-link"): "admin",
    ("membership", "DELETE", "/v1/departments/{dept}/registration-link"): "admin",
    ("membership", "POST", "/v1/join/{token}"): "public",
    ("membership", "POST", "/v1/departments/{dept}/groups"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/groups"): "admin",
    ("membership", "PATCH", "/v1/departments/{dept}/groups/{group}"): "admin",
    ("membership", "DELETE", "/v1/departments/{dept}/groups/{group}"): "admin",
    ("membership", "PUT", "/v1/departments/{dept}/groups/{group}/members/{account}"): "admin",
    ("membership", "DELETE", "/v1/departments/{dept}/groups/{group}/members/{account}"): "admin",
    ("membership", "POST", "/v1/departments/{dept}/imports"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/imports"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/imports/template.csv"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/imports/template.xlsx"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/imports/{import_id}"): "admin",
    ("membership", "GET", "/v1/departments/{dept}/imports/{import_id}/results.csv"): "admin",
    ("notifications", "GET", "/v1/notifications/departments/{dept}/emails"): "admin",
    ("reporting", "GET", "/v1/reports/departments/{dept}/users/export"): "admin",
    ("reporting", "GET", "/v1/reports/departments/{dept}/users"): "admin",
    ("reporting", "GET", "/v1/reports/departments/{dept}/users/{account}"): "admin",
    (
        "reporting",
        "GET",
        "/v1/reports/departments/{dept}/users/{account}/certificates/{certificate}",
    ): "admin",
    ("reporting", "GET", "/v1/reports/departments/{dept}/users/{account}/certificates"): "admin",
    # The activity log: admins only (the walk's officer-less callers are refused either way).
    ("reporting", "GET", "/v1/reports/departments/{dept}/activity"): "admin",
    ("reporting", "GET", "/v1/reports/departments/{dept}/activity/export"): "admin",
}

# Which callers each rule keeps out (a caller not listed may get through).
_BAD_TOKENS = frozenset({"no token", "expired", "tampered", "revoked"})
_OUTSIDERS = _BAD_TOKENS | {"other department's admin"}
KEPT_OUT: dict[Rule, frozenset[str]] = {
    "public": frozenset(),
    "authenticated": _BAD_TOKENS,
    "member": _OUTSIDERS,
    "admin": _OUTSIDERS | {"plain member"},
    "operator": _OUTSIDERS | {"plain member"},
    "requester": _OUTSIDERS | {"plain member"},
}
# A bad token is a 401 on every route that looks at tokens, never a 403 or a 404.
UNAUTHENTICATED = frozenset({"expired", "tampered", "revoked"})
METHODS = frozenset({"get", "post", "put", "patch", "delete"})


@dataclass(frozen=True)
class Target:
    """Real ids to put in the paths, so a refusal is about the caller, not a 404."""

    values: dict[str, str]

    def path(self, template: str) -> str:
        return template.format(**self.values)


def tampered(token: str) -> str:
    """The token with its payload changed to claim the operator scope (signature kept)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = OPERATOR_SCOPE
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def _documents(api: Api) -> dict[str, dict[str, Any]]:
    documents = {}
    for service in SERVICES:
        r = await api.http.get(api.url(service, "/openapi.json"))
        assert r.status_code == 200, (service, r.text)
        documents[service] = r.json()
    return documents


async def _operation_of(api: Api, controllable: Any, department_id: str) -> str:
    """The operation that created the department (started by an operator)."""
    engine = create_async_engine(controllable.database_url("membership"))
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                sa.text(
                    "SELECT id FROM operations WHERE department_id = :d"
                    " AND kind = 'create_department'"
                ),
                {"d": uuid.UUID(department_id)},
            )
    finally:
        await engine.dispose()
    assert found is not None, "the department's creation has an operation"
    return str(found)


async def test_no_route_lets_a_caller_through_that_it_should_keep_out(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    outsider = await api.create_department()
    member = await added_person(api, admin, role="member")
    [invitation] = await invite_ok(api, admin, [random_email("walk")])
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        json={"name": "Walkers"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    target = Target(
        {
            "dept": admin.department_id,
            "account": member.account_id,
            "invitation": invitation["invitation_id"],
            "group": r.json()["group_id"],
            "import_id": str(uuid.uuid4()),
            "address_id": str(uuid.uuid4()),
            "operation": await _operation_of(api, controllable, admin.department_id),
            "certificate": "cert-walk",
            "token": "not-a-real-link-token",
        }
    )
    revoked = await _signed_out_everywhere(api, await second_admin(api, admin))
    callers: dict[str, dict[str, str]] = {
        "no token": {},
        "expired": bearer(api.keys.token(uuid.UUID(admin.account_id), ttl=timedelta(seconds=-120))),
        "tampered": bearer(tampered(admin.token)),
        "revoked": revoked.headers,
        "other department's admin": outsider.headers,
        "plain member": bearer(member.token),
    }

    documents = await _documents(api)
    walked = {
        (service, method.upper(), path)
        for service, document in documents.items()
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS
    }
    assert not walked - set(RULES), f"routes without a rule in RULES: {sorted(walked - set(RULES))}"
    assert not set(RULES) - walked, f"rules for routes that are gone: {sorted(set(RULES) - walked)}"

    let_through = []
    calls = 0
    for service, method, template in sorted(walked):
        rule = RULES[(service, method, template)]
        url = api.url(service, target.path(template))
        body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
        for caller in sorted(KEPT_OUT[rule]):
            r = await api.http.request(method, url, json=body, headers=callers[caller])
            calls += 1
            if 200 <= r.status_code < 300:
                let_through.append(f"{caller}: {method} {service} {template} -> {r.status_code}")
            elif caller in UNAUTHENTICATED and r.status_code != 401:
                let_through.append(
                    f"{caller}: {method} {service} {template} -> {r.status_code}, not 401"
                )
    assert not let_through, "\n".join(let_through)
    assert calls >= 150, f"only {calls} calls: the walk lost its routes"

    # The walk's ids are real: their rightful callers get through.
    checks = [
        ("membership", f"/v1/departments/{admin.department_id}/groups", admin.headers),
        ("membership", f"/v1/operations/{target.values['operation']}", _operator(api)),
        ("identity", "/v1/me", bearer(member.token)),
    ]
    for service, path, headers in checks:
        r = await api.http.get(api.url(service, path), headers=headers)
        assert r.status_code == 200, (path, r.text)


async def _signed_out_everywhere(api: Api, admin: Admin) -> Admin:
    """The admin, after signing out everywhere, once every service has heard of it."""
    r = await api.http.post(
        api.url("identity", "/v1/me/sign-out-everywhere"), headers=admin.headers
    )
    assert r.status_code == 204, r.text
    d = admin.department_id
    for service, path in (
        ("membership", f"/v1/departments/{d}"),
        ("notifications", f"/v1/notifications/departments/{d}/emails"),
        ("reporting", f"/v1/reports/departments/{d}/users"),
    ):

        async def refused(service: str = service, path: str = path) -> bool:
            r = await api.http.get(api.url(service, path), headers=admin.headers)
            return r.status_code == 401

        await wait_for(refused, timeout=60, what=f"{service} refusing the revoked token")
    return admin


def _operator(api: Api) -> dict[str, str]:
    return bearer(api.keys.operator_token())


async def test_a_departments_creation_is_not_readable_without_a_token(
    api: Api, controllable: Any
) -> None:
    admin: Admin = await api.create_department()
    operation = await _operation_of(api, controllable, admin.department_id)
    url = api.url("membership", f"/v1/operations/{operation}")

    r = await api.http.get(url)
    assert r.status_code in (401, 404), r.text
    assert admin.email not in r.text
    # Its first admin did not start it either.
    r = await api.http.get(url, headers=admin.headers)
    assert r.status_code == 404, r.text
    r = await api.http.get(url, headers=_operator(api))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
