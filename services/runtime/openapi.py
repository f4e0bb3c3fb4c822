"""A service's OpenAPI document, made to tell the truth about its error answers.

FastAPI documents a route's success and its request-validation 422, as
``application/json``. Every error a service answers is a problem-details document
(``runtime.problems``) sent as ``application/problem+json``, and a route can answer more
than 422: what its dependencies and its use cases raise, what the middleware refuses.
``install`` rewrites the generated document so that each operation lists every status it
can answer, each with the problem types it can carry (``x-problem-types``, and in the
description), derived from the code rather than written by hand:

- the domain errors a route's endpoint and each of its dependencies declare with
  ``@raises(...)``, mapped through the service's ``PROBLEMS`` table (so a status or a
  slug changed in the table changes the document);
- the caller's token (``require_principal`` / ``optional_principal``): 401;
- a request body: 400 (malformed JSON), 413 (``runtime.body_limit``), 415 (a body
  that is not what the operation reads), 422 (validation);
- parameters: 422 (validation, and the text guard's control characters);
- every operation: 500 (``runtime.problems.UnexpectedErrors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from . import idempotency_rules
from .auth import optional_principal, require_principal
from .errors import (
    SHARED_PROBLEMS,
    DomainError,
    ProblemTable,
    ProblemType,
    RequestTooLarge,
    Unauthenticated,
)

MEDIA_TYPE = "application/problem+json"
F = TypeVar("F", bound=Callable[..., Any])

# Statuses the runtime itself answers, with the problem types they carry.
MALFORMED_JSON = ProblemType(400, "malformed-json", "Malformed JSON")
VALIDATION = ProblemType(422, "validation", "Invalid request")
UNSUPPORTED = ProblemType(415, "http-415", "Unsupported Media Type")
INTERNAL = ProblemType(500, "internal-error", "Internal error")
# ``runtime.idempotency``: another request with the same key, the same request still
# running; and a malformed key.
IDEMPOTENCY = (*idempotency_rules.PROBLEMS.values(), VALIDATION)
# Operation extension: the statuses with which rules refuse requests the schema accepts.
REFUSALS = "x-rule-refusals"
TOO_LARGE = SHARED_PROBLEMS[RequestTooLarge]

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Unauthorized: no valid access token (`WWW-Authenticate: Bearer`)",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request (`errors` names each field)",
    429: "Too many attempts (`Retry-After` says when to try again)",
    500: "Internal error",
    503: "Unavailable",
}

# The runtime's own dependencies and what they raise (decorating them would put the
# document's concerns into the token code).
_RUNTIME_RAISES: dict[Callable[..., Any], tuple[type[DomainError], ...]] = {
    require_principal: (Unauthenticated,),
    optional_principal: (Unauthenticated,),
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "The problem type."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "Which fields are at fault, when some are.",
        },
    },
}
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "message"],
    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
}
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def listed(choices: str) -> dict[str, Any]:
    """The schema of a query parameter's items that take ``choices`` (a regular expression
    of one value), several of them comma-separated, blanks around them allowed: as the
    services read them (``?status=sent,retrying``, or the parameter repeated)."""
    one = rf"(?:(?:{choices})\s*)?"
    return {"items": {"type": "string", "pattern": rf"^\s*{one}(?:,\s*{one})*$"}}


def no_values() -> list[str]:
    """The default of a repeatable query parameter that is absent: no values.

    A function of ours, not ``list``: pydantic inspects a default factory's signature
    each time it calls it, and inspecting the built-in ``list`` costs about 0.1 ms
    (a third of a millisecond per users-table page with its three such parameters).
    """
    return []


UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Cursors are opaque: base64url without padding (a malformed one is a 422 naming it; an
# empty one is no cursor).
CURSOR: dict[str, Any] = {"pattern": "^[A-Za-z0-9_-]*$"}


def raises(*errors: type[DomainError]) -> Callable[[F], F]:
    """Declare the domain errors an endpoint or a dependency can raise: its OpenAPI
    operation then documents the status and problem type of each (``install``)."""

    def mark(fn: F) -> F:
        declared: tuple[type[DomainError], ...] = getattr(fn, "__raises__", ())
        setattr(fn, "__raises__", (*declared, *errors))  # noqa: B010 (mypy: functions)
        return fn

    return mark


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def declared(route: Any, table: ProblemTable) -> dict[int, set[str]]:
    """The statuses (with problem type slugs) of the domain errors ``route`` (an
    ``APIRoute``, or FastAPI's view of one through the routers that include it) and its
    dependencies raise: the answers a request the schema accepts can still get."""
    out: dict[int, set[str]] = {}
    for call in _calls(route.dependant):
        for error in (*_RUNTIME_RAISES.get(call, ()), *getattr(call, "__raises__", ())):
            found = _problem_type(error, table)
            if found is not None:
                out.setdefault(found.status, set()).add(found.slug)
    return out


def answers(route: Any, table: ProblemTable) -> dict[int, set[str]]:
    """Every error status ``route`` can answer, each with its problem type slugs."""
    out = declared(route, table)

    def add(problem: ProblemType) -> None:
        out.setdefault(problem.status, set()).add(problem.slug)

    if route.body_field is not None:
        for problem in (MALFORMED_JSON, TOO_LARGE, UNSUPPORTED, VALIDATION):
            add(problem)
    if route.dependant.path_params or route.dependant.query_params or route.body_field:
        add(VALIDATION)
    add(INTERNAL)
    return out


def _problem_type(error: type[DomainError], table: ProblemTable) -> ProblemType | None:
    for cls in error.mro():
        if cls in table:
            return table[cls]
        if cls in SHARED_PROBLEMS:
            return SHARED_PROBLEMS[cls]
    return None


def _problem_response(status: int, slugs: set[str], old: dict[str, Any] | None) -> dict[str, Any]:
    kinds = ", ".join(f"`/{slug}`" for slug in sorted(slugs))
    described = (old or {}).get("description") or _DESCRIPTIONS.get(status, "Error")
    if described == "Validation Error":
        described = _DESCRIPTIONS[422]
    response: dict[str, Any] = {
        "description": f"{described} ({kinds})." if slugs else described,
        "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
    }
    if slugs:
        response["x-problem-types"] = sorted(slugs)
    for key in ("headers", "links"):
        if old and key in old:
            response[key] = old[key]
    return response


def _reads_an_address(operation: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the operation's request body holds an email address (``format: email``)."""
    seen: set[str] = set()

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name in seen:
                    return False
                seen.add(name)
                return walk(schemas.get(name))
            if node.get("format") == "email":
                return True
            return any(walk(value) for value in node.values())
        if isinstance(node, list):
            return any(walk(item) for item in node)
        return False

    return walk(operation.get("requestBody"))


def rewrite(document: dict[str, Any], app: FastAPI, table: ProblemTable) -> dict[str, Any]:
    """``document`` (FastAPI's) with every operation's error answers made true."""
    routes = {
        (context.path_format, method.lower()): context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ProblemDetails"] = PROBLEM_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((path, method))
            if route is None or not isinstance(operation, dict):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            found = answers(route, table)
            refusals = set(declared(route, table))
            parameters = operation.get("parameters", ())
            if any(p.get("name") == idempotency_rules.HEADER for p in parameters):
                for problem in IDEMPOTENCY:
                    found.setdefault(problem.status, set()).add(problem.slug)
                    refusals.add(problem.status)
            if _reads_an_address(operation, schemas):
                # ``format: email`` is the address's syntax; an address that cannot
                # receive mail (a reserved domain such as ``.test``) is refused as well.
                refusals.add(VALIDATION.status)
            # The statuses a request the schema accepts can still be answered with: a rule
            # (an unknown id, a conflict, a spent link) said no.
            operation[REFUSALS] = sorted(refusals)
            for status_text in [s for s in responses if s[:1] in "45"]:
                found.setdefault(int(status_text), set())
            for status, slugs in found.items():
                responses[str(status)] = _problem_response(
                    status, slugs, responses.get(str(status))
                )
            operation["responses"] = dict(sorted(responses.items()))
    return document


def install(app: FastAPI, table: ProblemTable) -> None:
    """Make ``app``'s OpenAPI document list every error answer of every operation.

    Call it after every other wrapper of ``app.openapi`` (``runtime.idempotency``), so
    the statuses they add get the problem media type too.
    """
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        app.openapi_schema = rewrite(generate(), app, table)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
