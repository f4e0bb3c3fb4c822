"""``Idempotency-Key`` on the POST operations that create something.

A plain ASGI middleware (it must read the whole request body before the route does,
and hold the answer back until it is stored). For a POST to one of the service's
idempotent operations that carries the header:

- the key is checked (``idempotency_rules.parse_key``; a bad one is a 422 naming the
  header) and scoped by the caller: the verified token's subject, or ``anonymous``.
  A request with an invalid token passes untouched, and its route answers 401;
- the key is claimed in the service's ``idempotency_keys`` table (``KeyStore``). A
  new key runs the request, with the key readable by the use cases through
  ``current_key()``; its answer is stored before it is sent, unless it is a 5xx or
  an exception (the key is released, and a retry runs again);
- a key already used answers what its first request answered (``Idempotent-Replayed:
  true``), 422 ``idempotency-key-mismatch`` for a different request, or 409
  ``idempotency-key-in-use`` while the first still runs. A first request whose
  process died is taken over once its lease has run out.

What a crash between a commit and the stored answer leaves: the retry runs the
request again. Use cases whose work outlives the request (membership's account
requests and imports) store ``current_key()`` with that work and find it again;
synchronous creations answer as a second attempt would (see docs/idempotency.md).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, NoReturn

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import TokenVerifier, bearer_token
from .errors import DomainError, Unauthenticated
from .idempotency_rules import (
    HEADER,
    IN_USE_RETRY_AFTER_S,
    LEASE,
    PROBLEMS,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    fingerprint,
    kept_headers,
    parse_key,
    replay_headers,
    scoped,
    worth_keeping,
)
from .idempotency_store import Claim, KeyStore
from .logging import get_logger
from .loops import keep_running, sleep_for
from .problems import problem_of, problem_response

log = get_logger(__name__)

ANONYMOUS = "anonymous"
# Larger bodies are not buffered: they pass as if they had no key. Every idempotent
# route refuses them anyway (the largest, an import, takes 10 MB).
MAX_BODY = 16 * 1024 * 1024
PURGE_EVERY_S = 600.0

_current: ContextVar[str | None] = ContextVar("idempotency_key", default=None)


def current_key() -> str | None:
    """The caller-scoped ``Idempotency-Key`` of the request being answered, if it has one.

    Work that outlives the request (a request to identity, an import) is stored with
    it, so a retry that runs again after a crash finds that work instead of starting
    it twice.
    """
    return _current.get()


def idempotent_paths(app: FastAPI, operations: frozenset[str]) -> list[re.Pattern[str]]:
    """The path patterns of ``app``'s POST operations named in ``operations``, read from
    its OpenAPI document (the operation ids clients see); ``LookupError`` for a name
    that is not a POST operation of the app."""
    found: dict[str, re.Pattern[str]] = {}
    for template, item in app.openapi().get("paths", {}).items():
        operation_id = (item.get("post") or {}).get("operationId")
        if operation_id in operations:
            found[operation_id] = compile_path(template)[0]
    missing = operations - found.keys()
    if missing:
        raise LookupError(f"no POST operation named {sorted(missing)} in {app.title}")
    return list(found.values())


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _caller(scope: Scope) -> str | None:
    """Whose key it is: the token's subject, ``anonymous`` without a token, None when the
    token is invalid (the route says so)."""
    request = Request(scope)
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    verifier: TokenVerifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:
        return None
    try:
        return str(verifier.verify(token).account_id)
    except Unauthenticated:
        return None


async def _buffered(receive: Receive, limit: int) -> tuple[bytes | None, list[Message]]:
    """The request's body if it ends within ``limit`` bytes, and the messages read."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages  # the client went away
        size += len(message.get("body", b""))
        if size > limit:
            return None, messages
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages), messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the messages already read, then the live ones."""
    pending = deque(messages)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay


async def _quietly(action: Awaitable[object], what: str) -> None:
    """Bookkeeping that must not turn an answer into an error (the database is away:
    the key's lease runs out, and a retry runs again)."""
    try:
        await action
    except Exception as exc:
        log.warning(f"idempotency key: could not {what}", error=repr(exc))


async def _hold(keys: KeyStore, caller: str, key: str, owner: Any) -> None:
    """Renew the lease while the request runs (a live request is never taken over)."""
    while True:
        await asyncio.sleep(LEASE.total_seconds() / 3)
        try:
            if not await keys.renew(caller, key, owner):
                return
        except Exception as exc:
            log.warning("idempotency key: could not renew its lease", error=repr(exc))


async def _answer_problem(error: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(problem_of(error, PROBLEMS), _route_path(scope))
    await response(scope, receive, send)


async def _replay(claim: Claim, send: Send) -> None:
    body = claim.body or b""
    headers = replay_headers(claim.headers or [])
    headers.append((b"content-length", str(len(body)).encode()))
    assert claim.status is not None
    await send({"type": "http.response.start", "status": claim.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotencyMiddleware:
    """Answers a retried POST (same ``Idempotency-Key``) as its first attempt was answered."""

    def __init__(self, app: ASGIApp, operations: frozenset[str], max_body: int = MAX_BODY) -> None:
        self.app = app
        self.operations = operations
        self.max_body = max_body
        self._paths: list[re.Pattern[str]] | None = None

    def _applies(self, scope: Scope) -> bool:
        if self._paths is None:
            # The OpenAPI document exists once every route is in: read it on first use.
            self._paths = idempotent_paths(scope["app"], self.operations)
        path = _route_path(scope)
        return any(pattern.match(path) for pattern in self._paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, or answer it from (or record it in) its key."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"idempotency-key"]
        caller = _caller(scope) if values and self._applies(scope) else None
        if caller is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except DomainError as error:
            await _answer_problem(error, scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await self.app(scope, receive, send)
            return
        body, messages = await _buffered(receive, self.max_body)
        receive = _replaying(messages, receive)
        if body is None:
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        path, query = _route_path(scope), scope["query_string"]
        fp = fingerprint(scope["method"], path, query, content_type, body)
        keys: KeyStore = scope["app"].state.idempotency_keys
        claim = await keys.claim(caller, key, fp)
        if claim.verdict == "replay":
            await _replay(claim, send)
        elif claim.verdict == "mismatch":
            await _answer_problem(IdempotencyKeyMismatch(), scope, receive, send)
        elif claim.verdict == "in_use":
            in_use = IdempotencyKeyInUse(retry_after=IN_USE_RETRY_AFTER_S)
            await _answer_problem(in_use, scope, receive, send)
        else:
            assert claim.owner is not None
            if claim.resumed:
                log.warning("idempotency key taken over: its first request's process died")
            await self._run(scope, receive, send, keys, caller, key, claim.owner)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        keys: KeyStore,
        caller: str,
        key: str,
        owner: Any,
    ) -> None:
        """Run the request holding the key; store its answer, then send it."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        token = _current.set(scoped(caller, key))
        holder = asyncio.create_task(_hold(keys, caller, key, owner), name="idempotency-lease")
        try:
            await self.app(scope, receive, capture)
        except Exception:
            await _quietly(keys.release(caller, key, owner), "release it")
            raise
        finally:
            holder.cancel()
            _current.reset(token)
        if start is None:
            await _quietly(keys.release(caller, key, owner), "release it")
            return
        status = int(start["status"])
        body = b"".join(chunks)
        if worth_keeping(status):
            kept = kept_headers(start.get("headers", []))
            stored = keys.complete(caller, key, owner, status=status, headers=kept, body=body)
            await _quietly(stored, "store the answer")
        else:
            await _quietly(keys.release(caller, key, owner), "release it")
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})


_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A unique value (a UUID, say) that makes retrying this request safe: the same "
        "key with the same request within 24 h answers what the first attempt answered "
        "(`Idempotent-Replayed: true`); with a different request it is a 422 "
        "`/idempotency-key-mismatch`, and while the first attempt still runs a 409 "
        "`/idempotency-key-in-use` with `Retry-After`. 1 to 255 visible ASCII "
        "characters, bare or as a quoted structured-field string."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 257},
}


def install(app: FastAPI, operations: frozenset[str]) -> None:
    """Honour ``Idempotency-Key`` on these POST operations of ``app`` (by operation id),
    and document the header on them.

    Call it before adding middleware that should see the answers as sent (correlation
    ids, metrics): what is added later wraps it. The lifespan must put a ``KeyStore``
    on ``app.state.idempotency_keys`` and should run ``purge_forever``.
    """
    app.add_middleware(IdempotencyMiddleware, operations=operations)
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for item in schema.get("paths", {}).values():
            operation = item.get("post")
            if operation is None or operation.get("operationId") not in operations:
                continue
            operation.setdefault("parameters", []).append(dict(_PARAMETER))
            operation.setdefault("responses", {}).setdefault(
                "409", {"description": "Conflict (e.g. `/idempotency-key-in-use`)."}
            )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def purge_forever(keys: KeyStore) -> NoReturn:
    """Delete keys past their 24 h, a batch at a time, for the life of the service."""

    async def step() -> bool:
        return await keys.purge() > 0

    await keep_running(step, what="idempotency key purge", idle=lambda: sleep_for(PURGE_EVERY_S))
