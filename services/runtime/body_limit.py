"""A limit on the size of request bodies, for every route of an app.

A pure ASGI middleware, outside everything that reads a body (the idempotency
middleware buffers one, FastAPI parses one): a body that declares a
``Content-Length`` over the limit is refused at once, before a byte of it is
read; a body streamed without one (``Transfer-Encoding: chunked``) is counted as
it arrives, and refused as soon as it passes the limit. Either way the answer is
``413`` (``request-too-large`` for the services) and the process never holds more
than the limit of it. After a refusal mid-stream, the app is told the client went
away, and whatever it still answers is dropped.

The limit is one number per app (``max_body_bytes``, 64 KiB by default: every JSON
call of the API fits many times over), with larger limits for the few paths that
take files (a bulk upload), each a regular expression over the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import SHARED_PROBLEMS, RequestTooLarge
from .problems import problem_of, problem_response

DEFAULT_MAX_BODY = 64 * 1024

# Builds the refusal for a request over ``limit`` bytes at ``path``.
Refusal = Callable[[int, str], Response]
# (path pattern, limit in bytes): a path the pattern matches in full gets that limit.
Override = tuple[str, int]


def size_text(limit: int) -> str:
    """A byte count as people read it: ``64 KiB``, ``10 MiB``, ``100 bytes``."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def problem_refusal(limit: int, path: str) -> Response:
    """The services' refusal: a ``413 request-too-large`` problem document."""
    error = RequestTooLarge(
        f"The request body is larger than the {size_text(limit)} this call accepts."
    )
    return problem_response(problem_of(error, SHARED_PROBLEMS), path)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """Refuses request bodies larger than ``limit`` bytes (``overrides`` per path)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int = DEFAULT_MAX_BODY,
        overrides: Sequence[Override] = (),
        refusal: Refusal = problem_refusal,
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = [(re.compile(pattern), size) for pattern, size in overrides]
        self.refusal = refusal

    def limit_for(self, path: str) -> int:
        """The limit of a request to ``path``."""
        for pattern, size in self.overrides:
            if pattern.fullmatch(path):
                return size
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body counted, or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit_for(path)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self.refusal(limit, path)(scope, receive, send)
            return
        received = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self.refusal(limit, path)(scope, receive, send)
                    # To the app the client has gone: it stops reading, and whatever
                    # it answers now is dropped (the refusal was the answer).
                    return {"type": "http.disconnect"}
            return message

        async def app_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, app_send)
