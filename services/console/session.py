"""The signed-in person's session: the access token in one cookie, nothing else.

The token lives only in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure``
when the console is served over HTTPS): no page, script or URL ever holds it.
The console keeps no session store: signing out clears the cookie, and a token
a service no longer accepts (a 401) sends the person back to sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from .clients import SignInRequired
from .settings import Settings

SESSION_COOKIE = "prodigy_session"


def settings_of(request: Request) -> Settings:
    """The console's settings (``app.state.settings``)."""
    settings: Settings = request.app.state.settings
    return settings


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    max_age: int | None = None,
) -> None:
    """Every cookie of the console: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )


def delete_cookie(response: Response, settings: Settings, name: str) -> None:
    """Expire a cookie (with the same attributes it was set with)."""
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=settings.cookie_secure
    )


@dataclass(frozen=True)
class Session:
    """A signed-in person: the access token the services will judge."""

    token: str


def current_session(request: Request) -> Session | None:
    """The session of the request, if it has a session cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    return Session(token) if token else None


def require_session(request: Request) -> Session:
    """The session; without one, the person is sent to sign in (and back here after)."""
    session = current_session(request)
    if session is None:
        raise SignInRequired()
    return session


SignedIn = Annotated[Session, Depends(require_session)]
MaybeSignedIn = Annotated[Session | None, Depends(current_session)]


def start_session(response: Response, settings: Settings, token: str, expires_in: int) -> None:
    """Keep the new access token (the cookie lasts as long as the token)."""
    set_cookie(response, settings, SESSION_COOKIE, token, max_age=max(expires_in, 1))


def end_session(response: Response, settings: Settings) -> None:
    """Forget the access token."""
    delete_cookie(response, settings, SESSION_COOKIE)


# -- where to go after signing in ----------------------------------------------------


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/``: never an open redirect.

    Refused: absolute URLs, scheme-relative ``//host``, backslashes (browsers read
    ``/\\host`` as ``//host``), control characters.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def sign_in_url(next_path: str | None) -> str:
    """The sign-in page, coming back to ``next_path`` afterwards."""
    target = safe_next(next_path)
    return "/sign-in" if target == "/" else "/sign-in?" + urlencode({"next": target})
