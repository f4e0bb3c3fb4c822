"""RFC 9457 problem details for every error a service answers.

Use cases raise domain errors (``runtime.errors``); ``install`` maps them through
the service's table, and also renders request-validation errors and HTTP errors of
the framework; ``UnexpectedErrors`` renders anything else, so every error answer has
one shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import SHARED_PROBLEMS, DomainError, ProblemTable, Unauthenticated, problem_type
from .logging import get_logger

PROBLEM_BASE = "https://prodigy-users.dev/problems/"
MEDIA_TYPE = "application/problem+json"
# FastAPI's 400 for a body it could not decode at all.
UNPARSABLE_BODY = "There was an error parsing the body"

log = get_logger(__name__)


class Problem(Exception):
    """One problem-details document, before it is sent.

    Still raisable while the services move to domain errors (``runtime.errors``).
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The JSON document."""
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.errors is not None:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc


def problem_of(error: DomainError, table: ProblemTable) -> Problem:
    """The problem a domain error is answered with (its row in ``table``, or shared ones).

    An error with no row is a programming mistake: it is answered as a 500, and a
    test per service checks that every one of its errors has a row.
    """
    found = problem_type(error, table) or problem_type(error, SHARED_PROBLEMS)
    if found is None:
        log.error("domain error without a problem type", error=type(error).__name__)
        return internal_error()
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthenticated):
        # The challenge names the scheme the missing or bad token should use. Other
        # 401s (a sign-in with a wrong password) are not about a bearer token.
        headers["WWW-Authenticate"] = "Bearer"
    return Problem(
        found.status,
        found.slug,
        found.title,
        error.detail,
        errors=error.errors,
        headers=headers or None,
        extra=error.extra,
    )


def internal_error() -> Problem:
    """500: something unexpected; the log has the rest."""
    return Problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; try again, and tell us if it keeps happening.",
    )


def malformed_json() -> Problem:
    """400: the request body does not parse as JSON."""
    return Problem(
        400,
        "malformed-json",
        "Malformed JSON",
        "The request body is not valid JSON.",
        errors=[{"field": "(body)", "message": "not valid JSON"}],
    )


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    """Render a problem."""
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic/FastAPI errors as ``[{field, message}]``, dropping the ``body`` prefix."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or "(body)", "message": str(err.get("msg"))})
    return out


def allowed_methods(request: Request) -> list[str]:
    """Every method the app serves at the request's path, across all its routes."""
    path = request.url.path
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        template = getattr(context, "path_format", None) or getattr(context, "path", None)
        if template and compile_path(template)[0].match(path):
            methods |= set(getattr(context, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI, table: ProblemTable | None = None) -> None:
    """Make every error of ``app`` a problem-details answer; ``table`` maps the
    service's domain errors (the shared ones are always mapped)."""
    mapped = dict(table or {})

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(problem_of(exc, mapped), request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response(malformed_json(), request.url.path)
        problem = Problem(
            422,
            "validation",
            "Invalid request",
            "Some fields are missing or invalid; see `errors`.",
            errors=field_errors(exc.errors()),
        )
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
            # FastAPI's answer to a body it cannot even decode (not UTF-8): as malformed
            # as any other JSON that does not parse, and answered the same way.
            return problem_response(malformed_json(), request.url.path)
        if exc.status_code == 405:
            # The router names only the methods of the first route that matched the
            # path; a path served by several routes (GET and PATCH) has them all.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        problem = Problem(
            exc.status_code,
            "http-" + str(exc.status_code),
            str(exc.detail) if exc.detail else "Error",
            str(exc.detail),
            headers=headers,
        )
        return problem_response(problem, request.url.path)

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class UnexpectedErrors:
    """Plain ASGI middleware: an exception no handler took becomes a problem-details 500,
    logged with its traceback (and the request's correlation id, which every log line
    carries), and the connection stays usable.

    Starlette's own last resort (``ServerErrorMiddleware``, even with an ``Exception``
    handler) sends a plain-text 500 and then raises the exception again, for the server
    to log; uvicorn then closes the connection of an app that raised after its answer
    started, so a client's next request on that keep-alive connection was reset. Here
    the exception ends with the answer. Only when part of an answer is already out
    (a stream that fails midway) is it raised again: closing the connection is then the
    only way to tell the client that the body is incomplete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; answer 500 for what escapes it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            # The route template, never the raw path: some paths carry tokens.
            route = getattr(scope.get("route"), "path", "(unmatched)")
            log.exception(
                "unexpected error", method=scope.get("method"), route=route, answered=started
            )
            if started:
                raise
            await problem_response(internal_error())(scope, receive, send)
