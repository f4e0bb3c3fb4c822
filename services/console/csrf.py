"""CSRF protection: every form that changes something carries a signed token.

The scheme is a synchronizer token without a server-side store. Each browser gets
a random id in an HttpOnly, SameSite=Strict cookie (``prodigy_sid``, set by
``security.SecurityMiddleware``); a form's token is that id signed with the
console's secret (``itsdangerous``, timestamped). A POST is accepted only with a
token whose signature holds, that is younger than ``csrf_max_age_s`` and whose id
is the cookie's. Forms send it as the ``csrf_token`` field (plain POSTs work
without JavaScript); htmx requests send it in the ``X-CSRF-Token`` header (the
layout puts it in ``hx-headers``). The id is renewed at sign-in, so a token
shown before signing in is worthless after it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SID_COOKIE = "prodigy_sid"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A request that changes something came without a valid CSRF token."""


class CsrfSigner:
    """Signs and checks tokens bound to a browser's id."""

    def __init__(self, secret: bytes, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="prodigy-console-csrf")
        self._max_age = max_age_s

    def token(self, sid: str) -> str:
        """The token forms carry for this browser."""
        return str(self._serializer.dumps(sid))

    def valid(self, token: str | None, sid: str | None) -> bool:
        """The token was signed by us, recently, for this very id."""
        if not token or not sid:
            return False
        try:
            signed_sid = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:
            return False
        return isinstance(signed_sid, str) and hmac.compare_digest(signed_sid, sid)


def new_sid() -> str:
    """A fresh browser id (128 bits)."""
    return secrets.token_urlsafe(16)


def sid_of(request: Request) -> str:
    """The browser id this response is bound to (a new one the middleware will set)."""
    sid: str = request.state.sid
    return sid


def renew_sid(request: Request) -> None:
    """Give the browser a new id now (at sign-in): older tokens stop working."""
    request.state.sid = new_sid()
    request.state.sid_changed = True


def token_for(request: Request) -> str:
    """The CSRF token for forms on this page."""
    signer: CsrfSigner = request.app.state.csrf
    return signer.token(sid_of(request))


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without a valid token (a router dependency)."""
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(HEADER)
    if token is None:
        form = await request.form()
        value = form.get(FIELD)
        token = value if isinstance(value, str) else None
    signer: CsrfSigner = request.app.state.csrf
    # The id the browser sent, not a fresh one the middleware may have made up.
    if not signer.valid(token, request.cookies.get(SID_COOKIE)):
        raise CsrfRefused()
