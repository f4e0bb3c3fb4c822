"""Security headers on every answer of a service's HTTP API.

A pure ASGI middleware (streamed exports pass through untouched). The answers are
JSON, CSV, XLSX and PDF for programs and the console, never pages to render, and
they carry personal data, so:

- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``: a browser that opens one runs nothing from it and
  shows it in no frame;
- ``X-Content-Type-Options: nosniff``: a file is what its content type says;
- ``Cache-Control: no-store``: no browser or proxy keeps a copy;
- ``Referrer-Policy: no-referrer``: some paths carry link tokens.

A route may set its own value of any of these; the middleware only fills in what
is missing. The interactive documentation (``/docs``, ``/redoc``) is a page that
loads its script and style from a CDN, so it gets a policy that allows exactly
that (and still no framing); the Ingress does not route it (deploy/README.md).
An error that escapes every handler is answered here, as a ``500`` problem
document with the same headers, rather than as the server's bare text.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import internal_error, problem_response

API_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

# FastAPI's Swagger UI and ReDoc pages: their bundles from jsDelivr, an inline
# script that starts them, the favicon from FastAPI's site, the OpenAPI document
# from here.
DOCS_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "connect-src 'self'",
        "worker-src blob:",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


class SecurityHeaders:
    """Adds ``API_HEADERS`` (``DOCS_CSP`` on the documentation pages) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to its answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in DOCS_PATHS
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in API_HEADERS.items():
                    headers.setdefault(name, value)
                if docs:
                    headers["Content-Security-Policy"] = DOCS_CSP
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            if not started:
                # The server logs it (the error goes on up); the client gets a problem.
                response = problem_response(internal_error(), scope["path"])
                await response(scope, receive, with_headers)
            raise
