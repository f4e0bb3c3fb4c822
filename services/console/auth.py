"""Signing in and out, "forgot password", and setting a password from an emailed link.

Identity decides everything: the console posts what the person typed and shows
the answer. The set-password page is the one every emailed set-password and
reset link opens (``PRODIGY_PUBLIC_BASE_URL`` points at the console).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from .clients import Ok, Problem
from .csrf import renew_sid
from .deps import Api, Config, MaybeSignedIn
from .forms import FormErrors, errors_from
from .routing import page_router
from .session import end_session, safe_next, start_session
from .templating import render

router = page_router()

SIGN_IN_LABELS = {"email": "Email address", "password": "Password"}
RESET_LABELS = {"email": "Email address"}
PASSWORD_LABELS = {"password": "New password"}


@router.get("/sign-in")
async def sign_in_page(
    request: Request, session: MaybeSignedIn, next: str | None = None, signed_out: bool = False
) -> Response:
    """The sign-in form (a signed-in person goes straight on)."""
    if session is not None and not signed_out:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request,
        "auth/sign_in.html",
        {"next": safe_next(next), "signed_out": signed_out, "errors": FormErrors(), "email": ""},
    )


async def sign_in(api: Api, email: str, password: str) -> tuple[Ok | None, FormErrors]:
    """Ask identity for an access token; the form's errors when it says no."""
    result = await api.call(
        "identity",
        "POST",
        "/v1/auth/token",
        json={"email": email, "password": password},
        signing_in=True,
    )
    if isinstance(result, Ok):
        return result, FormErrors()
    if result.status == 401:
        errors = FormErrors()
        errors.add("Enter a correct email address and password.", "email")
        return None, errors
    if result.slug == "email-not-confirmed":
        # The right password of a registration not confirmed yet: say so, offer the link.
        errors = FormErrors(resend_to=str(result.extra.get("email") or email))
        errors.add(result.detail, "email")
        return None, errors
    return None, errors_from(result, SIGN_IN_LABELS)


def signed_in_response(request: Request, settings: Config, answer: Ok, target: str) -> Response:
    """Keep the token, give the browser a new CSRF id, and go on to ``target``."""
    body = answer.json()
    response = RedirectResponse(target, status_code=303)
    start_session(response, settings, str(body["access_token"]), int(body.get("expires_in", 3600)))
    renew_sid(request)
    return response


@router.post("/sign-in")
async def sign_in_form(
    request: Request,
    api: Api,
    settings: Config,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in: on success to ``next`` (a local path only), else the form with its errors."""
    answer, errors = await sign_in(api, email, password)
    if answer is None:
        return render(
            request,
            "auth/sign_in.html",
            {"next": safe_next(next), "signed_out": False, "errors": errors, "email": email},
            status=403 if errors.resend_to else 401 if "email" in errors.fields else 422,
        )
    return signed_in_response(request, settings, answer, safe_next(next))


@router.post("/sign-out")
async def sign_out(request: Request, settings: Config) -> Response:
    """End the session: the cookie is cleared, and the person is told so."""
    response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
    end_session(response, settings)
    renew_sid(request)
    return response


@router.get("/forgot-password")
async def forgot_page(request: Request) -> Response:
    """Ask for a reset link."""
    return render(request, "auth/forgot.html", {"errors": FormErrors(), "email": "", "sent": False})


@router.post("/forgot-password")
async def forgot_form(request: Request, api: Api, email: Annotated[str, Form()] = "") -> Response:
    """Identity answers 202 whether or not the account exists: so does this page."""
    result = await api.call(
        "identity", "POST", "/v1/password/reset-requests", json={"email": email}
    )
    if isinstance(result, Problem):
        errors = errors_from(result, RESET_LABELS)
        return render(
            request,
            "auth/forgot.html",
            {"errors": errors, "email": email, "sent": False},
            status=result.status,
        )
    return render(
        request, "auth/forgot.html", {"errors": FormErrors(), "email": email, "sent": True}
    )


@router.get("/set-password")
async def set_password_page(request: Request, token: str = "") -> Response:
    """The page of every set-password and reset link."""
    return render(
        request, "auth/set_password.html", {"token": token, "errors": FormErrors(), "done": False}
    )


@router.post("/set-password")
async def set_password_form(
    request: Request,
    api: Api,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Set the password; a bad, used or expired link gets a page that says what to do."""
    result = await api.call(
        "identity", "POST", "/v1/password/set", json={"token": token, "password": password}
    )
    if isinstance(result, Ok):
        return render(
            request, "auth/set_password.html", {"token": "", "done": True, "errors": FormErrors()}
        )
    if result.status == 400 or not token:
        return render(
            request, "auth/link_not_valid.html", {"problem": result}, status=result.status
        )
    return render(
        request,
        "auth/set_password.html",
        {"token": token, "errors": errors_from(result, PASSWORD_LABELS), "done": False},
        status=result.status,
    )
