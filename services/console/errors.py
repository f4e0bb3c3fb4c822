"""Pages for what no page handles itself: the session ended, a service is down, a
form without its CSRF token, a refusal, an unknown address, a bug.

Installed once by ``app.build_app``; pages raise (``SignInRequired``,
``ServiceDown``, ``PageProblem``...) and never catch these themselves. Nothing
here shows a stack trace or a service's raw answer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.problems import allowed_methods

from .clients import Ok, Problem, Result, ServiceDown, SignInRequired
from .csrf import CsrfRefused
from .security import PAGE_HEADERS
from .session import end_session, settings_of, sign_in_url
from .templating import is_fragment_request, render

log = get_logger(__name__)


class PageProblem(Exception):
    """A service refused what a page needs (403 not allowed, 404 unknown, ...)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def expect(result: Result) -> Ok:
    """The answer a page cannot do without; a refusal becomes its own page."""
    if isinstance(result, Problem):
        raise PageProblem(result)
    return result


def _back_here(request: Request) -> str:
    if is_fragment_request(request):
        current = request.headers.get("hx-current-url", "")
        # Only the path: the header is the browser's full URL.
        start = current.find("/", current.find("//") + 2) if "//" in current else -1
        return current[start:] if start > 0 else "/"
    if request.method == "GET":
        query = f"?{request.url.query}" if request.url.query else ""
        return request.url.path + query
    # A form's POST goes to its own page's address: come back to the form.
    return request.url.path


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    target = sign_in_url(_back_here(request))
    if is_fragment_request(request):
        response: Response = Response(status_code=200, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    end_session(response, settings_of(request))
    return response


async def _service_down(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceDown)
    return render(
        request,
        "errors/service_down.html",
        {"service": exc.label, "reason": exc.reason},
        block="content",
        status=503,
    )


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    log.info("form refused: no valid CSRF token", path=request.url.path)
    return render(request, "errors/csrf.html", block="content", status=403)


async def _page_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageProblem)
    problem = exc.problem
    template = {403: "errors/not_allowed.html", 404: "errors/not_found.html"}.get(
        problem.status, "errors/refused.html"
    )
    return render(request, template, {"problem": problem}, block="content", status=problem.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return render(request, "errors/not_found.html", {"problem": None}, status=404)
    if exc.status_code == 405:
        response = render(request, "errors/not_found.html", {"problem": None}, status=405)
        # Every method of the path (the router's own names only its first route's).
        response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response
    return render(request, "errors/refused.html", {"problem": None}, status=exc.status_code)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    in_path = any(err.get("loc", ("",))[0] == "path" for err in exc.errors())
    status = 404 if in_path else 400
    template = "errors/not_found.html" if in_path else "errors/refused.html"
    return render(request, template, {"problem": None}, status=status)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", path=request.url.path)
    response = render(request, "errors/unexpected.html", status=500)
    # This answer leaves from outside the security middleware: set its headers here.
    for name, value in PAGE_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: FastAPI) -> None:
    """Register the pages above as the app's exception handlers."""
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(ServiceDown, _service_down)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(PageProblem, _page_problem)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
