"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from prodigy_users.runtime.auth import OPERATOR_SCOPE, TokenIssuer
from prodigy_users.runtime.keys import load_private_key

T = TypeVar("T")
PASSWORD = "correct horse battery staple"


def random_email(prefix: str = "user") -> str:
    """A fresh address per test: no table truncation between tests."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


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
        return self.token(uuid.UUID(int=0), scopes=(OPERATOR_SCOPE,))


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
    """Talks to a running stack over HTTP, as users and operators do."""

    def __init__(self, urls: dict[str, str], keys: Keys) -> None:
        self.urls = urls
        self.keys = keys
        self.http = httpx.AsyncClient(timeout=30.0)

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
        assert r.status_code == 201, r.text
        body = r.json()
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

    async def mails(self, to: str | None = None) -> list[dict[str, Any]]:
        """Captured mails, optionally only those to one address."""
        r = await self.http.get(self.url("mail", "/messages"))
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
