"""The pages people land on from their emails: accept an invitation, join with the
department's link, confirm the address of a registration.

Each link page offers "Create my account" (name, email, password) and "Sign in to
accept" with any existing account (whatever its email); a signed-in person accepts
in one click. Membership decides every outcome; these pages say what it answered:
joined, "check your email" (a registration whose address must be confirmed, or one
whose address has an account: the page cannot tell, and says the same), already a
member, a link that is used, revoked, expired, rotated or switched off. An
invitation's page fills the registration form with the invited address and the name
the admin pasted with it (``GET /v1/invitations/{token}``); a join link's page asks.

The confirmation link's page asks for the password chosen when registering (identity
checks it with the token) and does nothing on GET: mail scanners that open links
confirm nothing. Confirmed, the person is signed in and sees the department joined.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from .auth import sign_in, signed_in_response
from .clients import Ok, Problem, ServiceDown, SignInRequired
from .deps import Api, Config, MaybeSignedIn
from .forms import FormErrors, errors_from
from .routing import page_router
from .session import Session, sign_in_url
from .templating import render

router = page_router()

REGISTER_LABELS = {"name": "Full name", "email": "Email address", "password": "Password"}
CONFIRM_LABELS = {"password": "Password"}
RESEND_LABELS = {"email": "Email address"}
# How long the page waits for a registration that membership answered with 202.
OPERATION_WAIT_S = 8.0


@dataclass(frozen=True)
class Link:
    """An invitation link or a department's self-registration link."""

    kind: str  # "invitation" or "join"
    token: str

    @property
    def path(self) -> str:
        """This page's own address."""
        prefix = "invitations" if self.kind == "invitation" else "join"
        return f"/{prefix}/{self.token}"

    @property
    def api_path(self) -> str:
        """Membership's call that uses the link."""
        if self.kind == "invitation":
            return f"/v1/invitations/{self.token}/accept"
        return f"/v1/join/{self.token}"

    @property
    def title(self) -> str:
        """The page's heading."""
        return "Accept your invitation" if self.kind == "invitation" else "Join the department"


def _context(link: Link, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "link": link,
        "me": {},
        "register": {"name": "", "email": ""},
        "register_errors": FormErrors(),
        "sign_in_errors": FormErrors(),
        "sign_in_email": "",
    }
    base.update(extra)
    return base


async def _me(api: Api, session: Session | None) -> dict[str, Any]:
    if session is None:
        return {}
    try:
        result = await api.call("identity", "GET", "/v1/me", token=session.token)
    except ServiceDown:
        return {}
    return result.json() if isinstance(result, Ok) else {}


async def _invited(api: Api, link: Link) -> dict[str, str]:
    """The registration form's first values: the invited address and the name the admin
    pasted with it. Nothing for a join link, or when membership says no (the form's
    answer will say why) or is away."""
    if link.kind != "invitation":
        return {"name": "", "email": ""}
    try:
        result = await api.call("membership", "GET", f"/v1/invitations/{link.token}")
    except ServiceDown:
        return {"name": "", "email": ""}
    body = result.json() if isinstance(result, Ok) else {}
    return {"name": str(body.get("name") or ""), "email": str(body.get("email") or "")}


async def _landing(request: Request, link: Link, api: Api, session: Session | None) -> Response:
    try:
        me = await _me(api, session)
    except SignInRequired:
        me = {}  # an expired session: the page offers both forms, as to anyone
    register = await _invited(api, link) if not me else {"name": "", "email": ""}
    return render(request, "public/link.html", _context(link, me=me, register=register))


def _joined_target(body: dict[str, Any]) -> str:
    return f"/departments/{body['department_id']}?joined={body.get('role', 'member')}"


def _refusal(request: Request, link: Link, problem: Problem) -> Response | None:
    """The page for an answer that ends the visit (a bad link, already a member)."""
    if problem.slug == "already-member":
        return render(
            request, "public/already_member.html", {"link": link, "problem": problem}, status=409
        )
    if problem.status == 400 and (
        problem.slug.startswith("invitation-") or problem.slug.startswith("registration-link")
    ):
        return render(
            request, "public/link_not_valid.html", {"link": link, "problem": problem}, status=400
        )
    return None


async def _settle(api: Api, result: Ok | Problem) -> Ok | Problem | str:
    """A 202's operation followed for a few seconds: its outcome, or its id if still pending."""
    if isinstance(result, Problem) or result.status != 202:
        return result
    operation = result.json()
    url = str(operation.get("operation_url", ""))
    deadline = time.monotonic() + OPERATION_WAIT_S
    while time.monotonic() < deadline:
        polled = await api.call("membership", "GET", url)
        if isinstance(polled, Problem):
            return polled
        body = polled.json()
        if body.get("status") == "succeeded":
            member = body.get("member") or {}
            joined = {**(body.get("result") or {}), "department_id": member.get("department_id")}
            return Ok(201, joined, polled.headers)
        if body.get("status") == "failed":
            return Problem.of_json(body.get("problem") or {})
        await asyncio.sleep(0.25)
    return str(operation.get("operation_id", ""))


async def _register(
    request: Request, link: Link, api: Api, settings: Config, name: str, email: str, password: str
) -> Response:
    result = await api.call(
        "membership",
        "POST",
        link.api_path,
        json={"name": name, "email": email, "password": password},
    )
    if isinstance(result, Ok) and result.json().get("status") == "check_your_email":
        # The same page whether the address is new or has an account (its owner is
        # emailed how to sign in): nobody learns which addresses have one.
        shown = str(result.json().get("email") or email)
        return render(request, "public/check_email.html", {"link": link, "email": shown})
    settled = await _settle(api, result)
    if isinstance(settled, str):
        return RedirectResponse(f"/registrations/{settled}", status_code=303)
    if isinstance(settled, Ok):
        body = settled.json()
        answer, _ = await sign_in(api, email, password)
        target = _joined_target(body) if body.get("department_id") else "/"
        if answer is None:
            return RedirectResponse(sign_in_url(target), status_code=303)
        return signed_in_response(request, settings, answer, target)
    refusal = _refusal(request, link, settled)
    if refusal is not None:
        return refusal
    errors = errors_from(settled, REGISTER_LABELS)
    if settled.slug == "account-exists":
        errors = FormErrors()
        errors.add(
            "An account with this email address already exists: sign in below to accept with it.",
            "email",
        )
    return render(
        request,
        "public/link.html",
        _context(
            link,
            register={"name": name, "email": email},
            register_errors=errors,
            sign_in_email=email if settled.slug == "account-exists" else "",
        ),
        status=settled.status,
    )


async def _accept_signed_in(request: Request, link: Link, api: Api, token: str) -> Response:
    result = await api.call("membership", "POST", link.api_path, token=token)
    settled = await _settle(api, result)
    if isinstance(settled, str):
        return RedirectResponse(f"/registrations/{settled}", status_code=303)
    if isinstance(settled, Ok):
        return RedirectResponse(_joined_target(settled.json()), status_code=303)
    refusal = _refusal(request, link, settled)
    if refusal is not None:
        return refusal
    return render(request, "errors/refused.html", {"problem": settled}, status=settled.status)


async def _sign_in_and_accept(
    request: Request, link: Link, api: Api, settings: Config, email: str, password: str
) -> Response:
    answer, errors = await sign_in(api, email, password)
    if answer is None:
        return render(
            request,
            "public/link.html",
            _context(link, sign_in_errors=errors, sign_in_email=email),
            status=401,
        )
    token = str(answer.json()["access_token"])
    outcome = await _accept_signed_in(request, link, api, token)
    # Signed in either way: the session starts here, whatever the link said.
    signed = signed_in_response(request, settings, answer, "/")
    for value in signed.headers.getlist("set-cookie"):
        outcome.headers.append("set-cookie", value)
    return outcome


def _routes(kind: str, prefix: str) -> None:
    @router.get(f"/{prefix}/{{token}}", name=f"{kind}_page")
    async def landing(request: Request, token: str, api: Api, session: MaybeSignedIn) -> Response:
        return await _landing(request, Link(kind, token), api, session)

    @router.post(f"/{prefix}/{{token}}", name=f"{kind}_register")
    async def register(
        request: Request,
        token: str,
        api: Api,
        settings: Config,
        name: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> Response:
        return await _register(request, Link(kind, token), api, settings, name, email, password)

    @router.post(f"/{prefix}/{{token}}/sign-in", name=f"{kind}_sign_in")
    async def sign_in_accept(
        request: Request,
        token: str,
        api: Api,
        settings: Config,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> Response:
        return await _sign_in_and_accept(request, Link(kind, token), api, settings, email, password)

    @router.post(f"/{prefix}/{{token}}/accept", name=f"{kind}_accept")
    async def accept(request: Request, token: str, api: Api, session: MaybeSignedIn) -> Response:
        link = Link(kind, token)
        if session is None:
            return RedirectResponse(sign_in_url(link.path), status_code=303)
        return await _accept_signed_in(request, link, api, session.token)


_routes("invitation", "invitations")
_routes("join", "join")


@router.get("/registrations/{operation}")
async def registration_progress(request: Request, operation: uuid.UUID, api: Api) -> Response:
    """A registration membership is still finishing: this page looks again every 2 s."""
    result = await api.call("membership", "GET", f"/v1/operations/{operation}")
    if isinstance(result, Problem):
        return render(request, "errors/not_found.html", {"problem": result}, status=404)
    body = result.json()
    if body.get("status") == "failed":
        problem = Problem.of_json(body.get("problem") or {})
        return render(request, "errors/refused.html", {"problem": problem}, status=problem.status)
    done = body.get("status") == "succeeded"
    dept = (body.get("member") or {}).get("department_id")
    target = sign_in_url(f"/departments/{dept}") if done and dept else sign_in_url("/")
    # No script: a Refresh header makes the browser ask again until it is done.
    headers = {} if done else {"Refresh": "2"}
    return render(request, "public/pending.html", {"done": done, "target": target}, headers=headers)


# -- confirming a registration's address ----------------------------------------------


@router.get("/confirm-email")
async def confirm_page(request: Request, token: str = "") -> Response:
    """The page the confirmation email opens: a form, nothing done until it is sent."""
    return render(request, "public/confirm_email.html", {"token": token, "errors": FormErrors()})


@router.post("/confirm-email")
async def confirm_form(
    request: Request,
    api: Api,
    settings: Config,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Confirm with the token and the password chosen; signed in, on to the outcome."""
    result = await api.call(
        "identity",
        "POST",
        "/v1/email-confirmations",
        json={"token": token, "password": password},
        signing_in=True,
    )
    if isinstance(result, Problem):
        if result.status == 400 or not token:
            return render(
                request, "public/confirm_link_not_valid.html", {"problem": result}, status=400
            )
        errors = FormErrors()
        if result.status == 401:
            errors.add("Enter the password you chose when you registered.", "password")
        else:
            errors = errors_from(result, CONFIRM_LABELS)
        return render(
            request,
            "public/confirm_email.html",
            {"token": token, "errors": errors},
            status=result.status,
        )
    confirmed = result.json()
    target = f"/confirm-email/done?registration={confirmed.get('request_id') or ''}"
    answer, _ = await sign_in(api, str(confirmed.get("email", "")), password)
    if answer is None:
        return RedirectResponse(target, status_code=303)
    return signed_in_response(request, settings, answer, target)


@router.get("/confirm-email/done")
async def confirmed_page(
    request: Request, api: Api, session: MaybeSignedIn, registration: str = ""
) -> Response:
    """Confirmed: the department joined (or why not); looks again every 2 s meanwhile."""
    context: dict[str, Any] = {
        "joined": False,
        "pending": False,
        "problem": None,
        "signed_in": session is not None,
        "sign_in": sign_in_url("/"),
    }
    try:
        operation = uuid.UUID(registration)
    except ValueError:
        return render(request, "public/confirmed.html", context)  # confirmed, nothing to join
    result = await api.call("membership", "GET", f"/v1/operations/{operation}")
    if isinstance(result, Problem):
        return render(request, "errors/not_found.html", {"problem": result}, status=404)
    body = result.json()
    status = body.get("status")
    if status == "failed":
        context["problem"] = Problem.of_json(body.get("problem") or {})
        return render(request, "public/confirmed.html", context)
    if status != "succeeded":
        context["pending"] = True
        return render(request, "public/confirmed.html", context, headers={"Refresh": "2"})
    outcome = body.get("result") or {}
    department_id = (body.get("member") or {}).get("department_id")
    context.update(
        joined=True,
        department_id=department_id,
        department_name=outcome.get("department_name"),
        sign_in=sign_in_url(f"/departments/{department_id}" if department_id else "/"),
    )
    return render(request, "public/confirmed.html", context)


@router.post("/confirm-email/resend")
async def resend_confirmation(
    request: Request, api: Api, email: Annotated[str, Form()] = ""
) -> Response:
    """Ask identity to send the link again; the answer is the same whoever asks."""
    result = await api.call(
        "identity", "POST", "/v1/email-confirmations/resend", json={"email": email}
    )
    if isinstance(result, Problem):
        errors = errors_from(result, RESEND_LABELS)
        return render(
            request, "errors/refused.html", {"problem": result, "errors": errors}, status=422
        )
    return render(request, "public/confirmation_sent.html", {"email": email})
