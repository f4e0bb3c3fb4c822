"""Identity's HTTP surface."""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, EmailStr, Field

from prodigy_users.runtime.auth import CurrentPrincipal
from prodigy_users.runtime.problems import Problem

from .deps import IdentityService, Operator

router = APIRouter()


class TokenRequest(BaseModel):
    """Credentials."""

    email: str = Field(min_length=1, max_length=320, examples=["ana.lima@example.org"])
    password: str = Field(min_length=1, max_length=1024)


class AccessToken(BaseModel):
    """A bearer access token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until it expires.")


class PasswordSet(BaseModel):
    """A set-password or reset token and the new password."""

    token: str = Field(min_length=1, max_length=512)
    password: str = Field(min_length=1, max_length=1024)


class ResetRequest(BaseModel):
    """Who forgot their password."""

    email: EmailStr


class AccountPublic(BaseModel):
    """The caller's account."""

    account_id: uuid.UUID
    email: str
    name: str


class PasswordLink(BaseModel):
    """A set-password link for an operator to hand over."""

    url: str
    token: str
    expires_at: datetime


@router.post("/v1/auth/token", operation_id="issue_token", tags=["auth"])
async def issue_token(body: TokenRequest, identity: IdentityService) -> AccessToken:
    """Sign in: an access token, or 401 whether or not the email exists."""
    token, ttl = await identity.login(body.email, body.password)
    return AccessToken(access_token=token, expires_in=ttl)


@router.get("/v1/auth/jwks", operation_id="jwks", tags=["auth"])
async def jwks(request: Request) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    keys: dict[str, Any] = request.app.state.runtime.state["jwks"]
    return keys


@router.post("/v1/password/set", status_code=204, operation_id="set_password", tags=["password"])
async def set_password(body: PasswordSet, identity: IdentityService) -> Response:
    """Set a password with a single-use set-password or reset token."""
    await identity.set_password(body.token, body.password)
    return Response(status_code=204)


@router.post(
    "/v1/password/reset-requests",
    status_code=202,
    operation_id="request_password_reset",
    tags=["password"],
)
async def request_reset(body: ResetRequest, identity: IdentityService) -> Response:
    """Ask for a reset email. Always 202: the answer never tells whether the account exists."""
    await identity.request_reset(body.email)
    return Response(status_code=202)


@router.get("/v1/me", operation_id="me", tags=["accounts"])
async def me(principal: CurrentPrincipal, identity: IdentityService) -> AccountPublic:
    """The caller's own account."""
    account = await identity.account(principal.account_id)
    if account is None:
        raise Problem(404, "not-found", "No such account", "The token's account does not exist.")
    return AccountPublic(account_id=account.id, email=account.email, name=account.name)


@router.post(
    "/v1/accounts/{account}/password-link",
    status_code=201,
    operation_id="issue_password_link",
    tags=["operators"],
)
async def password_link(account: uuid.UUID, _: Operator, identity: IdentityService) -> PasswordLink:
    """Platform operators: a fresh set-password link (e.g. for a department's first admin)."""
    link = await identity.operator_link(account)
    return PasswordLink(url=link.url, token=link.token, expires_at=link.expires_at)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Set your password</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input,button{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}}
.err{{color:#a00}}</style></head><body><h1>Set your password</h1>{body}</body></html>"""


@router.get("/set-password", response_class=HTMLResponse, include_in_schema=False)
async def set_password_page(token: str = "") -> HTMLResponse:
    """The page the emailed link opens: a plain form, no script."""
    form = (
        '<form method="post" action="/set-password">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        "<label>New password (at least 10 characters)"
        '<input type="password" name="password" autocomplete="new-password" required></label>'
        "<button>Set password</button></form>"
    )
    return HTMLResponse(_PAGE.format(body=form), headers={"Referrer-Policy": "no-referrer"})


@router.post("/set-password", response_class=HTMLResponse, include_in_schema=False)
async def set_password_form(
    identity: IdentityService, token: str = Form(""), password: str = Form("")
) -> HTMLResponse:
    """The form's target: sets the password and says what happened."""
    try:
        await identity.set_password(token, password)
    except Problem as problem:
        messages = [e["message"] for e in problem.errors or []] or [problem.detail]
        items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
        again = f"/set-password?token={html.escape(token)}"
        body = f'<ul class="err">{items}</ul><p><a href="{again}">Try again</a></p>'
        return HTMLResponse(_PAGE.format(body=body), status_code=problem.status)
    return HTMLResponse(_PAGE.format(body="<p>Your password is set. You can sign in now.</p>"))
