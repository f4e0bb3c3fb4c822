"""RFC 9457 problem details for every error a service answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://prodigy-users.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answer: ``raise Problem(409, "account-exists", "Account exists", "...")``."""

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


def install(app: FastAPI) -> None:
    """Make every error of ``app`` a problem-details answer."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        errors = (
            [{"field": "(body)", "message": "not valid JSON"}]
            if malformed
            else field_errors(exc.errors())
        )
        problem = Problem(
            400 if malformed else 422,
            "malformed-json" if malformed else "validation",
            "Malformed JSON" if malformed else "Invalid request",
            "The request body is not valid JSON."
            if malformed
            else "Some fields are missing or invalid; see `errors`.",
            errors=errors,
        )
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(
            exc.status_code,
            "http-" + str(exc.status_code),
            str(exc.detail) if exc.detail else "Error",
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
