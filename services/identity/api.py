"""Identity's HTTP surface."""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Form, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from prodigy_users.runtime.auth import CurrentPrincipal
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import problem_of
from prodigy_users.runtime.text import Email, Secret, Text

from .deps import AccountsService, Operator, PublicKeys
from .errors import PROBLEMS

router = APIRouter()


class TokenRequest(BaseModel):
    """Credentials."""

    email: Text = Field(min_length=1, max_length=320, examples=["ana.lima@example.org"])
    password: Secret = Field(min_length=1, max_length=1024)


class AccessToken(BaseModel):
    """A bearer access token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until it expires.")


class PasswordSet(BaseModel):
    """A set-password or reset token and the new password."""

    token: Text = Field(min_length=1, max_length=512)
    password: Secret = Field(min_length=1, max_length=1024)


class ResetRequest(BaseModel):
    """Who forgot their password."""

    email: Email


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
async def issue_token(body: TokenRequest, accounts: AccountsService) -> AccessToken:
    """Sign in: an access token, or 401 whether or not the email exists."""
    token, ttl = await accounts.login(body.email, body.password)
    return AccessToken(access_token=token, expires_in=ttl)


@router.get("/v1/auth/jwks", operation_id="jwks", tags=["auth"])
async def jwks(keys: PublicKeys) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    return keys


@router.post("/v1/password/set", status_code=204, operation_id="set_password", tags=["password"])
async def set_password(body: PasswordSet, accounts: AccountsService) -> Response:
    """Set a password with a single-use set-password or reset token."""
    await accounts.set_password(body.token, body.password)
    return Response(status_code=204)


@router.post(
    "/v1/password/reset-requests",
    status_code=202,
    operation_id="request_password_reset",
    tags=["password"],
)
async def request_reset(body: ResetRequest, accounts: AccountsService) -> Response:
    """Ask for a reset email. Always 202: the answer never tells whether the account exists."""
    await accounts.request_reset(body.email)
    return Response(status_code=202)


@router.get("/v1/me", operation_id="me", tags=["accounts"])
async def me(principal: CurrentPrincipal, accounts: AccountsService) -> AccountPublic:
    """The caller's own account."""
    account = await accounts.me(principal.account_id)
    return AccountPublic(account_id=account.id, email=account.email, name=account.name)


@router.post(
    "/v1/accounts/{account}/password-link",
    status_code=201,
    operation_id="issue_password_link",
    tags=["operators"],
)
async def password_link(account: uuid.UUID, _: Operator, accounts: AccountsService) -> PasswordLink:
    """Platform operators: a fresh set-password link (e.g. for a department's first admin)."""
    link = await accounts.operator_link(account)
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
    accounts: AccountsService, token: str = Form(""), password: str = Form("")
) -> HTMLResponse:
    """The form's target: sets the password and says what happened.

    A refusal is a page too (a person's browser shows it), with the status and the
    messages its problem document would carry.
    """
    try:
        await accounts.set_password(token, password)
    except DomainError as error:
        problem = problem_of(error, PROBLEMS)
        messages = [e["message"] for e in problem.errors or []] or [problem.detail]
        items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
        again = f"/set-password?token={html.escape(token)}"
        body = f'<ul class="err">{items}</ul><p><a href="{again}">Try again</a></p>'
        return HTMLResponse(_PAGE.format(body=body), status_code=problem.status)
    return HTMLResponse(_PAGE.format(body="<p>Your password is set. You can sign in now.</p>"))
