"""``prodigy-users create-department``: the operator's first step on a running stack.

It signs a short-lived operator token with identity's private key (the operator
holds it on the dev stack), asks membership to create the department and its
first admin, and asks identity for that admin's set-password link.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from prodigy_users.runtime.auth import OPERATOR_SCOPE, OPERATOR_SUBJECT, TokenIssuer
from prodigy_users.runtime.keys import load_private_key
from prodigy_users.runtime.settings import ServiceSettings

OPERATOR_TTL = timedelta(minutes=5)


class OperatorError(Exception):
    """A failure to show the operator as one line."""


@dataclass(frozen=True)
class Endpoints:
    """Where membership and identity answer (and the console, for its address)."""

    membership: str = "http://127.0.0.1:8102"
    identity: str = "http://127.0.0.1:8101"
    console: str | None = None


def signing_key_path(explicit: Path | None, data_dir: Path) -> Path:
    """``--signing-key``, else ``PRODIGY_SIGNING_KEY_PATH``, else the stack's key."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("PRODIGY_SIGNING_KEY_PATH")
    if from_env:
        return Path(from_env)
    return data_dir / "keys" / "signing.pem"


def _kid(signing_key: Path, data_dir: Path) -> str:
    for jwks in (signing_key.parent / "jwks.json", data_dir / "keys" / "jwks.json"):
        if jwks.exists():
            keys = json.loads(jwks.read_text()).get("keys") or []
            if keys and isinstance(keys[0].get("kid"), str):
                return str(keys[0]["kid"])
    raise OperatorError(
        f"no jwks.json next to {signing_key} or in {data_dir / 'keys'}: cannot name the key "
        "(has `prodigy-users up` run with this --data-dir?)"
    )


def operator_token(signing_key: Path, data_dir: Path) -> str:
    """A 5-minute ``platform:operator`` token signed with identity's key."""
    if not signing_key.exists():
        raise OperatorError(
            f"signing key {signing_key} not found: start the stack first "
            "(`prodigy-users up`) or pass --signing-key / --data-dir"
        )
    settings = ServiceSettings()
    issuer = TokenIssuer(
        load_private_key(signing_key),
        kid=_kid(signing_key, data_dir),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    return issuer.issue(OPERATOR_SUBJECT, ttl=OPERATOR_TTL, scopes=(OPERATOR_SCOPE,))


def _problem(service: str, answer: httpx.Response) -> OperatorError:
    """One line from a problem-details answer (or whatever came back)."""
    try:
        body: Any = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = f"{body.get('title') or answer.reason_phrase}"
        if body.get("detail"):
            text += f": {body['detail']}"
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
            text += f" ({'; '.join(parts)})"
    else:
        text = answer.text.strip()[:200] or answer.reason_phrase
    return OperatorError(f"{service} answered {answer.status_code}: {text}")


def _call(
    client: httpx.Client,
    service: str,
    method: str,
    url: str,
    token: str | None,
    body: Any = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return client.request(method, url, json=body, headers=headers)
    except httpx.ConnectError as exc:
        raise OperatorError(
            f"cannot reach {service} at {url} ({exc}); is `prodigy-users up` running?"
        ) from exc
    except httpx.HTTPError as exc:
        raise OperatorError(f"{service} at {url} failed: {exc!r}") from exc


def _expect(service: str, answer: httpx.Response, *codes: int) -> dict[str, Any]:
    if answer.status_code not in codes:
        raise _problem(service, answer)
    if answer.status_code == 204 or not answer.content:
        return {}
    body = answer.json()
    if not isinstance(body, dict):
        raise OperatorError(f"{service} answered {answer.status_code} with {answer.text[:200]}")
    return body


def _field(service: str, body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise OperatorError(f"{service} answered without `{key}`: {json.dumps(body)[:300]}")
    return str(value)


def _wait_operation(
    client: httpx.Client, base: str, operation_url: str, token: str, within: float
) -> str:
    """Poll a membership operation until it is done; the admin's account id."""
    url = operation_url if operation_url.startswith("http") else base.rstrip("/") + operation_url
    deadline = time.monotonic() + within
    while True:
        body = _expect("membership", _call(client, "membership", "GET", url, token), 200)
        status = body.get("status")
        if status == "succeeded":
            result = body.get("result") or {}
            account = result.get("account_id") or result.get("admin_account_id")
            if not account:
                raise OperatorError(
                    f"membership: the operation succeeded without an account id: {body}"
                )
            return str(account)
        if status == "failed":
            problem = body.get("problem") or {}
            detail = problem.get("detail") or problem.get("title") or json.dumps(problem)
            raise OperatorError(f"membership: creating the department failed: {detail}")
        if time.monotonic() > deadline:
            raise OperatorError(
                f"membership: the department was not created within {within:.0f} s "
                f"(operation {url} still {status!r})"
            )
        time.sleep(0.25)


def create_department(
    client: httpx.Client,
    endpoints: Endpoints,
    token: str,
    *,
    name: str,
    admin_email: str,
    admin_name: str,
    admin_password: str | None = None,
    within: float = 30.0,
) -> dict[str, str]:
    """Create the department and its admin; the JSON the command prints."""
    answer = _call(
        client,
        "membership",
        "POST",
        f"{endpoints.membership.rstrip('/')}/v1/departments",
        token,
        {"name": name, "admin": {"name": admin_name, "email": admin_email}},
    )
    body = _expect("membership", answer, 201, 202)
    department_id = _field("membership", body, "department_id")
    if answer.status_code == 202:
        operation = _field("membership", body, "operation_url")
        account_id = _wait_operation(client, endpoints.membership, operation, token, within)
    else:
        account_id = _field("membership", body, "admin_account_id")
    link = _expect(
        "identity",
        _call(
            client,
            "identity",
            "POST",
            f"{endpoints.identity.rstrip('/')}/v1/accounts/{account_id}/password-link",
            token,
        ),
        201,
    )
    out = {"department_id": department_id, "admin_account_id": account_id}
    if endpoints.console:
        # The department's page in the console (there is no "my departments" call yet).
        out["console_url"] = f"{endpoints.console.rstrip('/')}/departments/{department_id}"
    if admin_password is None:
        out["set_password_url"] = _field("identity", link, "url")
        return out
    answer = _call(
        client,
        "identity",
        "POST",
        f"{endpoints.identity.rstrip('/')}/v1/password/set",
        None,  # a public call: the set-password token is the credential
        {"token": _field("identity", link, "token"), "password": admin_password},
    )
    if answer.status_code not in (200, 204):
        problem = _problem("identity", answer)
        raise OperatorError(
            f"{problem} (department {department_id} and admin account {account_id} were "
            f"created; the admin can set a password at {link.get('url')})"
        )
    return out
