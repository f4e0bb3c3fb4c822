"""The signed-in person's own account ("My account"): their name and their login email,
which are the account's and so the same in every department.

The name changes at once (identity's ``PATCH /v1/me``). A new login email takes the
current password and changes only when the person opens the link sent to the new
address (``/email-change``, a page that needs no sign-in: the link may be opened on
another device); asking answers the same whether or not another account holds the
address, and opening the link then says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import Response

from .clients import Ok, Problem
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .routing import page_router
from .session import sign_in_url
from .templating import render

router = page_router()

PAGE = "/account"
NAME_LABELS = {"name": "Full name"}
EMAIL_LABELS = {"email": "New login email", "password": "Current password"}


async def _me(api: Api, token: str) -> dict[str, Any]:
    me: dict[str, Any] = expect(await api.call("identity", "GET", "/v1/me", token=token)).json()
    return me


def _page(
    request: Request,
    me: dict[str, Any],
    *,
    notice: str = "",
    acting: str = "",
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "account/index.html",
        {
            "me": me,
            "notice": notice,
            "acting": acting,
            "errors": errors or FormErrors(),
            "values": values or {},
        },
        status=status,
    )


@router.get(PAGE)
async def account_page(request: Request, session: SignedIn, api: Api) -> Response:
    """The person's name and login email, and the forms that change them."""
    return _page(request, await _me(api, session.token))


@router.post(PAGE + "/name")
async def change_name(
    request: Request, session: SignedIn, api: Api, name: Annotated[str, Form()] = ""
) -> Response:
    """Set the person's name: every department shows the new one."""
    result = await api.call(
        "identity", "PATCH", "/v1/me", token=session.token, json={"name": name}
    )
    if isinstance(result, Problem):
        if result.status not in (400, 422):
            raise PageProblem(result)
        errors = errors_from(result, NAME_LABELS)
        me = await _me(api, session.token)
        return _page(
            request, me, acting="name", errors=errors, values={"name": name}, status=result.status
        )
    me = result.json()
    notice = (
        f"Your name is now {me['name']}. It is your account's, so every department you "
        "belong to shows it."
    )
    return _page(request, me, notice=notice)


@router.post(PAGE + "/email")
async def change_email(
    request: Request,
    session: SignedIn,
    api: Api,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Ask for a new login email: a link goes to it; nothing changes until it is opened."""
    result = await api.call(
        "identity",
        "POST",
        "/v1/me/email-change",
        token=session.token,
        json={"email": email, "password": password},
    )
    me = await _me(api, session.token)
    if isinstance(result, Problem):
        if result.status not in (400, 422, 429):
            raise PageProblem(result)
        errors = errors_from(result, EMAIL_LABELS)
        values = {"email": email}
        return _page(
            request, me, acting="email", errors=errors, values=values, status=result.status
        )
    notice = (
        f"We sent a link to {email}. Open it to make that address your login email; until "
        f"then you keep signing in with {me.get('email', 'your current one')}."
    )
    return _page(request, me, notice=notice)


@router.get("/email-change")
async def email_change_page(request: Request, token: str = "") -> Response:
    """The page the link sent to a new login email opens: a button, nothing done until
    it is pressed (a mail scanner that follows links changes nothing)."""
    return render(request, "account/email_change.html", {"token": token})


@router.post("/email-change")
async def confirm_email_change(
    request: Request, api: Api, token: Annotated[str, Form()] = ""
) -> Response:
    """Make the new address the login email; or say why the link cannot be used."""
    result = await api.call(
        "identity", "POST", "/v1/email-change-confirmations", json={"token": token}
    )
    if isinstance(result, Ok):
        changed = result.json()
        return render(
            request,
            "account/email_changed.html",
            {"email": changed.get("email", ""), "sign_in": sign_in_url("/account")},
        )
    if result.status in (400, 409):
        return render(
            request,
            "account/email_change_refused.html",
            {"problem": result, "taken": result.status == 409},
            status=result.status,
        )
    raise PageProblem(result)
