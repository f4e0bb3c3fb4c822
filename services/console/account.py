"""The signed-in person's own account ("My account"): their name and their login email,
which are the account's and so the same in every department.

The name changes at once (identity's ``PATCH /v1/me``). A new login email takes the
current password and changes only when the person opens the link sent to the new
address (``/email-change``, a page that needs no sign-in: the link may be opened on
another device); asking answers the same whether or not another account holds the
address, and opening the link then says so.

The page also lists the account's addresses: the login email and those linked to it
(an invitation accepted while signed in with another address links the invited one;
the person adds one with a link sent to it, ``/address-confirmation``, a button
page like the email change's). Any linked one can be removed; the login email cannot.
"""

from __future__ import annotations

import uuid
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
ADDRESS_LABELS = {"email": "Address to add"}


async def _me(api: Api, token: str) -> dict[str, Any]:
    me: dict[str, Any] = expect(await api.call("identity", "GET", "/v1/me", token=token)).json()
    return me


async def _addresses(api: Api, token: str) -> list[dict[str, Any]]:
    result = expect(await api.call("identity", "GET", "/v1/me/addresses", token=token))
    items: list[dict[str, Any]] = result.json()["items"]
    return items


async def _page(
    request: Request,
    api: Api,
    token: str,
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
            "addresses": await _addresses(api, token),
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
    return await _page(request, api, session.token, await _me(api, session.token))


@router.post(PAGE + "/name")
async def change_name(
    request: Request, session: SignedIn, api: Api, name: Annotated[str, Form()] = ""
) -> Response:
    """Set the person's name: every department shows the new one."""
    result = await api.call("identity", "PATCH", "/v1/me", token=session.token, json={"name": name})
    if isinstance(result, Problem):
        if result.status not in (400, 422):
            raise PageProblem(result)
        errors = errors_from(result, NAME_LABELS)
        me = await _me(api, session.token)
        return await _page(
            request,
            api,
            session.token,
            me,
            acting="name",
            errors=errors,
            values={"name": name},
            status=result.status,
        )
    me = result.json()
    notice = (
        f"Your name is now {me['name']}. It is your account's, so every department you "
        "belong to shows it."
    )
    return await _page(request, api, session.token, me, notice=notice)


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
        return await _page(
            request,
            api,
            session.token,
            me,
            acting="email",
            errors=errors,
            values=values,
            status=result.status,
        )
    notice = (
        f"We sent a link to {email}. Open it to make that address your login email; until "
        f"then you keep signing in with {me.get('email', 'your current one')}."
    )
    return await _page(request, api, session.token, me, notice=notice)


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


@router.post(PAGE + "/addresses")
async def add_address(
    request: Request, session: SignedIn, api: Api, email: Annotated[str, Form()] = ""
) -> Response:
    """Ask to add an address: a link goes to it; nothing is added until it is opened."""
    result = await api.call(
        "identity", "POST", "/v1/me/addresses", token=session.token, json={"email": email}
    )
    me = await _me(api, session.token)
    if isinstance(result, Problem):
        if result.status not in (400, 422, 429):
            raise PageProblem(result)
        errors = errors_from(result, ADDRESS_LABELS)
        return await _page(
            request,
            api,
            session.token,
            me,
            acting="address",
            errors=errors,
            values={"address": email},
            status=result.status,
        )
    notice = f"We sent a link to {email}. Open it to add that address to your account."
    return await _page(request, api, session.token, me, notice=notice)


@router.post(PAGE + "/addresses/{address_id}/remove")
async def remove_address(
    request: Request, session: SignedIn, api: Api, address_id: uuid.UUID
) -> Response:
    """Remove a linked address: it no longer finds this account."""
    addresses = {a["address_id"]: a for a in await _addresses(api, session.token)}
    result = await api.call(
        "identity", "DELETE", f"/v1/me/addresses/{address_id}", token=session.token
    )
    if isinstance(result, Problem):
        raise PageProblem(result)
    gone = addresses.get(str(address_id), {}).get("email", "The address")
    notice = f"{gone} is no longer linked to your account."
    return await _page(request, api, session.token, await _me(api, session.token), notice=notice)


@router.get("/address-confirmation")
async def address_confirmation_page(request: Request, token: str = "") -> Response:
    """The page the link sent to an address opens: a button, nothing done until it is
    pressed (a mail scanner that follows links changes nothing)."""
    return render(request, "account/address_confirm.html", {"token": token})


@router.post("/address-confirmation")
async def confirm_address(
    request: Request, api: Api, token: Annotated[str, Form()] = ""
) -> Response:
    """Link the address to the account that asked; or say why the link cannot be used."""
    result = await api.call("identity", "POST", "/v1/address-confirmations", json={"token": token})
    if isinstance(result, Ok):
        return render(
            request,
            "account/address_linked.html",
            {"email": result.json().get("email", ""), "account": "/account"},
        )
    if result.status in (400, 409):
        return render(
            request,
            "account/address_refused.html",
            {"problem": result, "taken": result.status == 409},
            status=result.status,
        )
    raise PageProblem(result)
