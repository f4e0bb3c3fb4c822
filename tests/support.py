"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from prodigy_users.runtime.auth import OPERATOR_SCOPE, OPERATOR_SUBJECT, TokenIssuer
from prodigy_users.runtime.keys import load_private_key

T = TypeVar("T")
PASSWORD = "correct horse battery staple"


def random_email(prefix: str = "user") -> str:
    """A fresh address per test: no table truncation between tests."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


# RFC 2544's benchmarking range: 131,072 addresses that are nobody's.
_CLIENTS = ipaddress.ip_network("198.18.0.0/15")


def client_address() -> str:
    """A client address of its own (in ``X-Forwarded-For``, which the test stack trusts
    from loopback, as it trusts the console): the services throttle per client address,
    and the tests of one session must not use up each other's budgets."""
    return str(_CLIENTS[secrets.randbelow(_CLIENTS.num_addresses - 2) + 1])


def from_address(ip: str) -> dict[str, str]:
    """The header that makes a request come from ``ip`` (through the trusted proxy)."""
    return {"X-Forwarded-For": ip}


async def _from_an_address_of_its_own(request: httpx.Request) -> None:
    request.headers.setdefault("X-Forwarded-For", client_address())


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Keys:
    """The stack's key files, so tests can mint tokens like identity does."""

    directory: Path

    def issuer(self) -> TokenIssuer:
        """An issuer with identity's signing key."""
        jwks = json.loads((self.directory / "jwks.json").read_text())
        return TokenIssuer(
            load_private_key(self.directory / "signing.pem"),
            kid=jwks["keys"][0]["kid"],
            issuer="prodigy-users/identity",
            audience="prodigy-users",
        )

    def token(
        self,
        subject: uuid.UUID,
        *,
        scopes: tuple[str, ...] = (),
        ttl: timedelta = timedelta(minutes=10),
    ) -> str:
        """A token identity would sign."""
        return self.issuer().issue(subject, ttl=ttl, scopes=scopes)

    def operator_token(self) -> str:
        """A platform operator's token."""
        return self.token(OPERATOR_SUBJECT, scopes=(OPERATOR_SCOPE,))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Admin:
    """A department with a signed-in admin."""

    department_id: str
    account_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization for this admin."""
        return bearer(self.token)


class Api:
    """Talks to a running stack over HTTP, as users and operators do.

    Each request comes from a client address of its own (``client_address``) unless it
    says otherwise (``from_address``): tests of the throttles choose theirs.
    """

    def __init__(self, urls: dict[str, str], keys: Keys) -> None:
        self.urls = urls
        self.keys = keys
        self.http = httpx.AsyncClient(
            timeout=30.0, event_hooks={"request": [_from_an_address_of_its_own]}
        )

    def url(self, service: str, path: str) -> str:
        """Full URL of a path on a service."""
        return self.urls[service].rstrip("/") + path

    async def close(self) -> None:
        """Close the client."""
        await self.http.aclose()

    async def create_department(
        self, name: str | None = None, admin_email: str | None = None
    ) -> Admin:
        """A department whose admin has set a password and signed in."""
        email = admin_email or random_email("admin")
        op = bearer(self.keys.operator_token())
        r = await self.http.post(
            self.url("membership", "/v1/departments"),
            json={
                "name": name or f"Dept {uuid.uuid4().hex[:6]}",
                "admin": {"name": "Ada Admin", "email": email},
            },
            headers=op,
        )
        # 202: identity did not answer within the API's 2 s (e.g. its consumer is
        # still rejoining after a broker restart); the operation completes later.
        assert r.status_code in (201, 202), r.text
        body = r.json()
        if r.status_code == 202:
            done = await self.wait_operation(body["operation_url"], op)
            assert done["status"] == "succeeded", done
            body["admin_account_id"] = done["result"]["account_id"]
        link = await self.http.post(
            self.url("identity", f"/v1/accounts/{body['admin_account_id']}/password-link"),
            headers=op,
        )
        assert link.status_code == 201, link.text
        r = await self.http.post(
            self.url("identity", "/v1/password/set"),
            json={"token": link.json()["token"], "password": PASSWORD},
        )
        # An admin who already had an account keeps using it; a used link is fine then.
        assert r.status_code in (204,), r.text
        token = await self.login(email)
        return Admin(body["department_id"], body["admin_account_id"], email, token)

    async def wait_operation(
        self, url: str, headers: dict[str, str], timeout: float = 60.0
    ) -> dict[str, Any]:
        """Poll a 202's operation until it is no longer pending."""

        async def probe() -> dict[str, Any] | None:
            r = await self.http.get(self.url("membership", url), headers=headers)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body if body["status"] != "pending" else None

        return await wait_for(probe, timeout=timeout, what=f"operation {url}")

    async def login(self, email: str, password: str = PASSWORD) -> str:
        """An access token."""
        r = await self.http.post(
            self.url("identity", "/v1/auth/token"), json={"email": email, "password": password}
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    async def add_member(
        self, admin: Admin, email: str, *, name: str = "Pat Member", role: str = "member"
    ) -> httpx.Response:
        """POST a new member."""
        return await self.http.post(
            self.url("membership", f"/v1/departments/{admin.department_id}/members"),
            json={"name": name, "email": email, "role": role},
            headers=admin.headers,
        )

    async def create_group(self, admin: Admin, name: str) -> str:
        """A new group of the admin's department; its id."""
        r = await self.http.post(
            self.url("membership", f"/v1/departments/{admin.department_id}/groups"),
            json={"name": name},
            headers=admin.headers,
        )
        assert r.status_code == 201, r.text
        group_id: str = r.json()["group_id"]
        return group_id

    async def put_in_group(self, admin: Admin, group_id: str, account_id: str) -> None:
        """Make the member one of the group's."""
        r = await self.http.put(
            self.url(
                "membership",
                f"/v1/departments/{admin.department_id}/groups/{group_id}/members/{account_id}",
            ),
            headers=admin.headers,
        )
        assert r.status_code == 204, r.text

    async def mails(self, to: str | None = None) -> list[dict[str, Any]]:
        """Captured mails, optionally only those to one address.

        The capture picks them (``?to=``, from its index): every test waits for mail
        this way, polling, and fetching the whole session's mail each time made each
        poll slower than the last."""
        params = {} if to is None else {"to": to}
        r = await self.http.get(self.url("mail", "/messages"), params=params)
        r.raise_for_status()
        mails: list[dict[str, Any]] = r.json()
        if to is None:
            return mails
        return [m for m in mails if to.lower() in [a.lower() for a in m["to"]]]

    async def wait_mail(
        self, to: str, *, count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` mails to ``to`` are captured."""

        async def probe() -> list[dict[str, Any]] | None:
            found = await self.mails(to)
            return found if len(found) >= count else None

        return await wait_for(probe, timeout=timeout, what=f"{count} mail(s) to {to}")

    async def report_users(
        self, admin: Admin, *, allow_forbidden: bool = False
    ) -> list[dict[str, Any]]:
        """Every row of the department's users table.

        ``allow_forbidden``: a 403 means "reporting has not seen this admin yet": no rows.
        """
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            r = await self.http.get(
                self.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
                params=params,
                headers=admin.headers,
            )
            if allow_forbidden and r.status_code == 403:
                return []
            assert r.status_code == 200, r.text
            page = r.json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def wait_reported(
        self, admin: Admin, email: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until ``email`` is in the department's users table."""

        async def probe() -> dict[str, Any] | None:
            users = await self.report_users(admin, allow_forbidden=True)
            rows = [u for u in users if u["email"].lower() == email.lower()]
            return rows[0] if rows else None

        return await wait_for(probe, timeout=timeout, what=f"{email} in the users table")


def link_token(mail: dict[str, Any]) -> str:
    """The set-password token in a credentials email's link."""
    import re

    match = re.search(r"/set-password\?token=([A-Za-z0-9_\-]+)", mail["text"])
    assert match, f"no set-password link in: {mail['text']!r}"
    return match.group(1)


# -- invitations, self-registration and the member lifecycle ---------------------------

_INVITATION_LINK = r"/invitations/([A-Za-z0-9_\-]+)"
_JOIN_LINK = r"/join/([A-Za-z0-9_\-]+)"


def invitation_token(mail: dict[str, Any]) -> str:
    """The token in an invitation (or reminder) email's link; text and HTML agree."""
    import re

    match = re.search(_INVITATION_LINK, mail["text"])
    assert match, f"no invitation link in: {mail['text']!r}"
    assert mail["html"] and match.group(0) in mail["html"], "the HTML part has the same link"
    return match.group(1)


def join_token(url: str) -> str:
    """The token of a self-registration URL (``{base}/join/{token}``)."""
    import re

    match = re.search(_JOIN_LINK + "$", url)
    assert match, f"not a registration link: {url!r}"
    return match.group(1)


def problem_type(response: httpx.Response) -> str:
    """The last path segment of a problem's ``type`` (``invitation-used``, ...)."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


@dataclass
class Person:
    """Someone with an account and an access token."""

    account_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization for this person."""
        return bearer(self.token)


@dataclass
class Settled:
    """The final answer of a call that may have answered 202 with an operation."""

    status_code: int
    body: dict[str, Any]


def _dept(admin: Admin, path: str = "") -> str:
    return f"/v1/departments/{admin.department_id}{path}"


async def invite(
    api: Api,
    admin: Admin,
    emails: list[str] | str,
    *,
    role: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST invitations (a list or one pasted string)."""
    body: dict[str, Any] = {"emails": emails}
    if role is not None:
        body["role"] = role
    return await api.http.post(
        api.url("membership", _dept(admin, "/invitations")),
        json=body,
        headers=headers if headers is not None else admin.headers,
    )


async def invite_ok(
    api: Api, admin: Admin, emails: list[str] | str, *, role: str | None = None
) -> list[dict[str, Any]]:
    """Invite and return the per-address results (asserting 200)."""
    r = await invite(api, admin, emails, role=role)
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


async def list_invitations(
    api: Api, admin: Admin, status: str | None = None
) -> list[dict[str, Any]]:
    """The department's invitations (optionally of one status), newest first."""
    r = await api.http.get(
        api.url("membership", _dept(admin, "/invitations")),
        params={"status": status} if status else None,
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def invitation_status(api: Api, admin: Admin, invitation_id: str) -> str | None:
    """The listed status of one invitation (None if not listed)."""
    for item in await list_invitations(api, admin):
        if item["invitation_id"] == invitation_id:
            return str(item["status"])
    return None


def registration(email: str, name: str = "Reggie Registrant") -> dict[str, str]:
    """A registration body with a strong password."""
    return {"name": name, "email": email, "password": PASSWORD}


async def settle(api: Api, r: httpx.Response, *, timeout: float = 30.0) -> Settled:
    """The final outcome of an accept/join: a 202 operation is followed to its end.

    A registration that succeeded after the 2 s wait is reported as 201 with the
    body a synchronous answer would have had. A 202 "check your email" (nothing to
    follow until the address is confirmed) is returned as it is.
    """
    if r.status_code != 202 or "operation_url" not in r.json():
        return Settled(r.status_code, r.json() if r.content else {})
    url = api.url("membership", r.json()["operation_url"])

    async def probe() -> dict[str, Any] | None:
        op = await api.http.get(url)
        assert op.status_code == 200, op.text
        body: dict[str, Any] = op.json()
        return body if body["status"] != "pending" else None

    op = await wait_for(probe, timeout=timeout, what=f"operation {url}")
    if op["status"] == "failed":
        return Settled(int(op["problem"]["status"]), op["problem"])
    return Settled(201, {"account_id": op["result"]["account_id"], **op["result"]})


async def accept(
    api: Api,
    token: str,
    *,
    person: Person | None = None,
    body: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /v1/invitations/{token}/accept: signed in (``person``) or registering (``body``)."""
    return await _use_link(api, f"/v1/invitations/{token}/accept", person, body)


async def join(
    api: Api,
    token: str,
    *,
    person: Person | None = None,
    body: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /v1/join/{token}: signed in (``person``) or registering (``body``)."""
    return await _use_link(api, f"/v1/join/{token}", person, body)


async def _use_link(
    api: Api, path: str, person: Person | None, body: dict[str, str] | None
) -> httpx.Response:
    return await api.http.post(
        api.url("membership", path), json=body, headers=person.headers if person else None
    )


_CONFIRM_LINK = r"/confirm-email\?token=([A-Za-z0-9_\-]+)"


def confirmation_token(mail: dict[str, Any]) -> str:
    """The token in a registration's confirmation email; text and HTML agree."""
    import re

    match = re.search(_CONFIRM_LINK, mail["text"])
    assert match, f"no confirmation link in: {mail['text']!r}"
    assert mail["html"] and match.group(1) in mail["html"], "the HTML part has the same link"
    return match.group(1)


def checked_email(r: httpx.Response, email: str) -> None:
    """A registration answered "check your email" (202), naming the address."""
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "check_your_email", "email": email}, r.json()


async def confirm_email(
    api: Api, email: str, password: str = PASSWORD, *, count: int = 1
) -> dict[str, Any]:
    """Open the ``count``-th confirmation email sent to ``email`` (waited for) and confirm
    with ``password``: identity's answer (``account_id``, ``department_id``, ``request_id``)."""
    mails = await wait_mail_matching(
        api,
        email,
        lambda m: "/confirm-email?token=" in m["text"],
        count=count,
        what="confirmation",
    )
    mail = mails[count - 1]
    r = await api.http.post(
        api.url("identity", "/v1/email-confirmations"),
        json={"token": confirmation_token(mail), "password": password},
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def registration_outcome(
    api: Api, request_id: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    """A registration's operation once it has ended (after the confirmation, for one
    that needed it): ``succeeded`` with the join, or ``failed`` with the problem."""
    url = api.url("membership", f"/v1/operations/{request_id}")

    async def probe() -> dict[str, Any] | None:
        r = await api.http.get(url)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] not in ("pending", "awaiting_confirmation") else None

    return await wait_for(probe, timeout=timeout, what=f"registration {request_id}")


async def invited_person(
    api: Api, admin: Admin, *, role: str | None = None, name: str = "Ivy Invitee"
) -> Person:
    """Invite a new address, follow the emailed link, register and sign in."""
    email = random_email("invitee")
    [result] = await invite_ok(api, admin, [email], role=role)
    assert result["outcome"] == "invited", result
    [mail] = await api.wait_mail(email)
    outcome = await settle(
        api, await accept(api, invitation_token(mail), body=registration(email, name))
    )
    assert outcome.status_code == 201, outcome.body
    return Person(outcome.body["account_id"], email, await api.login(email))


async def added_person(api: Api, admin: Admin, *, role: str = "member") -> Person:
    """Add a person (the foundation's flow) and mint them a token as identity would."""
    email = random_email(role)
    r = await api.add_member(admin, email, role=role)
    assert r.status_code == 201, r.text
    account_id = r.json()["account_id"]
    return Person(account_id, email, api.keys.token(uuid.UUID(account_id)))


async def second_admin(api: Api, admin: Admin) -> Admin:
    """Another admin of the same department (token minted as identity would)."""
    person = await added_person(api, admin, role="admin")
    return Admin(admin.department_id, person.account_id, person.email, person.token)


async def patch_member(
    api: Api, admin: Admin, account_id: str, body: dict[str, Any]
) -> httpx.Response:
    """PATCH a member (role, status, employee_id)."""
    return await api.http.patch(
        api.url("membership", _dept(admin, f"/members/{account_id}")),
        json=body,
        headers=admin.headers,
    )


async def report_row(api: Api, admin: Admin, account_id: str) -> dict[str, Any] | None:
    """The person's row in the users table (None if they are not in it)."""
    rows = [r for r in await api.report_users(admin) if r["account_id"] == account_id]
    return rows[0] if rows else None


async def wait_row(
    api: Api,
    admin: Admin,
    account_id: str,
    check: Callable[[dict[str, Any] | None], bool],
    *,
    what: str,
    timeout: float = 30.0,
) -> dict[str, Any] | None:
    """Wait until the person's users-table row (or its absence) passes ``check``."""

    async def probe() -> tuple[dict[str, Any] | None] | None:
        # A 403 means reporting has not yet seen the viewer's own role: not yet, either way.
        rows = await api.report_users(admin, allow_forbidden=True)
        if not rows:
            return None
        found = [r for r in rows if r["account_id"] == account_id]
        row = found[0] if found else None
        return (row,) if check(row) else None

    found = await wait_for(probe, timeout=timeout, what=what)
    return found[0]


async def backdate_invitation(database_url: str, invitation_id: str, seconds: float) -> None:
    """Pretend an invitation was last sent ``seconds`` earlier than it was.

    The one-reminder-an-hour rule cannot be waited out in a test; this moves the
    invitation's clock instead (only the embedded stack's database can be reached).
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE invitations SET last_sent_at = last_sent_at - make_interval(secs => :s)"
                    " WHERE id = :id"
                ),
                {"s": seconds, "id": uuid.UUID(invitation_id)},
            )
            assert result.rowcount == 1, f"no invitation {invitation_id}"
    finally:
        await engine.dispose()


async def wait_mail_matching(
    api: Api,
    to: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    count: int = 1,
    what: str = "matching mail",
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Wait until at least ``count`` mails to ``to`` pass ``predicate``; return those."""

    async def probe() -> list[dict[str, Any]] | None:
        found = [m for m in await api.mails(to) if predicate(m)]
        return found if len(found) >= count else None

    return await wait_for(probe, timeout=timeout, what=f"{count} {what} to {to}")


def subject_has(*words: str) -> Callable[[dict[str, Any]], bool]:
    """A mail predicate: the subject contains every word (case-insensitive)."""
    return lambda mail: all(w.lower() in mail["subject"].lower() for w in words)


def envelope_of(value: bytes | None) -> dict[str, Any] | None:
    """A record's envelope as JSON, or None for a record that is not one.

    Tests read topics from the beginning like a subscriber does, and some tests put
    unreadable records there on purpose (the dead-letter tests): skip those.
    """
    try:
        doc = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return None
    return doc


async def dead_letters(
    bootstrap: str, topic: str, marker: bytes, count: int, *, timeout: float = 45.0
) -> list[Any]:
    """Records of a dead-letter topic (one partition) that contain ``marker``: at least
    ``count`` of them, or what arrived before ``timeout``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(found) < count:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(r for r in records if marker in r.value)
        return found
    finally:
        await consumer.stop()
