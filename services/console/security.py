"""Headers on every answer, and the browser id CSRF tokens are bound to.

A pure ASGI middleware (streamed exports pass through untouched): a strict
Content-Security-Policy (scripts and styles from the console only, nothing
inline, no framing), ``X-Frame-Options: DENY``, ``nosniff``, no referrer (pages
such as ``/invitations/{token}`` carry secrets in their path), and ``no-store``
on everything but the static files (pages show personal data). Each request
gets a correlation id (``X-Correlation-ID``), sent on with the service calls it
makes, so one page's calls can be followed through the services' logs, and so is
the person's address (``X-Forwarded-For``: the services throttle per address).
"""

from __future__ import annotations

import uuid
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prodigy_users.runtime.logging import correlation_id
from prodigy_users.runtime.throttle_rules import IPNetwork, client_ip

from . import clients
from .csrf import SID_COOKIE, new_sid

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")[:100]
            return text
    return None


def _sid_from(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed cookie header counts as none
                continue
            if SID_COOKIE in jar:
                return jar[SID_COOKIE].value
    return None


def sid_cookie(value: str, secure: bool) -> str:
    """The ``Set-Cookie`` value of the browser id."""
    parts = [f"{SID_COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


class SecurityMiddleware:
    """Security headers on every answer; a browser id cookie for those without one."""

    def __init__(
        self, app: ASGIApp, *, secure_cookies: bool, trusted: tuple[IPNetwork, ...] = ()
    ) -> None:
        self.app = app
        self.secure_cookies = secure_cookies
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One id per page request, logged here and sent with every call it makes.
        cid = _header(scope, b"x-correlation-id") or uuid.uuid4().hex
        token = correlation_id.set(cid)
        peer = scope.get("client") or (None, None)
        forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        ip_token = clients.client_ip.set(client_ip(peer[0], forwarded, self.trusted))
        sent_sid = _sid_from(scope)
        state = scope.setdefault("state", {})
        state["sid"] = sent_sid or new_sid()
        state["sid_changed"] = sent_sid is None
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    headers.setdefault(name, value)
                if static:
                    headers["Cache-Control"] = "public, max-age=3600"
                else:
                    headers["Cache-Control"] = "no-store"
                    if state.get("sid_changed"):
                        headers.append("Set-Cookie", sid_cookie(state["sid"], self.secure_cookies))
                headers["X-Correlation-ID"] = cid
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            clients.client_ip.reset(ip_token)
            correlation_id.reset(token)
