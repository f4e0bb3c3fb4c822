"""The console's wiring root: ``build_app(settings)`` returns the ASGI app.

Page modules each own an area (``auth``, ``home``, ``users``, ``record``, ``imports``,
``groups``, ``emails``, ``activity``, ``public``); a new
area is a new module with its ``router`` (from ``routing.page_router``) and its
templates, added to ``PAGES`` below.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from prodigy_users.runtime.body_limit import BodyLimit, Override, size_text
from prodigy_users.runtime.logging import configure_logging, get_logger
from prodigy_users.runtime.serving import KEEP_ALIVE_S

from . import (
    account,
    activity,
    add_user,
    auth,
    emails,
    errors,
    groups,
    home,
    imports,
    invitations,
    my_training,
    public,
    record,
    registration_link,
    users,
)
from .clients import Services
from .csrf import CsrfSigner
from .secret import load_secret
from .security import SecurityMiddleware
from .settings import Settings

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

# Every area of pages, in the order their routes are matched (the users table's
# /users/export and /users/new before the record's /users/{account}).
PAGES: tuple[APIRouter, ...] = (
    auth.router,
    home.router,
    my_training.router,
    account.router,
    users.router,
    add_user.router,
    record.router,
    invitations.router,
    registration_link.router,
    imports.router,
    groups.router,
    emails.router,
    activity.router,
    public.router,
)


def health_router() -> APIRouter:
    """``/healthz`` and ``/readyz``: the console is ready as soon as it serves.

    Readiness does not wait for the four services: a service that is down gets a
    page that says so, and the rest of the console keeps working.
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return router


# Pages whose forms send more than ``max_body_bytes`` (a file): (path pattern, limit).
# The bulk upload's own limit (``upload_max_bytes`` and the multipart framing around
# the file) is added by ``build_app``: it comes from the settings.
BODY_LIMITS: tuple[Override, ...] = ()
# Multipart framing around an uploaded file (boundaries, part headers, the CSRF token).
UPLOAD_FRAMING = 1024 * 1024


def too_large(limit: int, path: str) -> Response:
    """What a form over the limit gets: a short page (no form sends that much by hand)."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Too much to send</title></head><body><h1>Too much to send</h1>"
        f"<p>What you sent is larger than the {size_text(limit)} this page accepts. "
        "Go back and send less.</p></body></html>"
    )
    return HTMLResponse(body, status_code=413)


def build_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    body_limits: Sequence[Override] = BODY_LIMITS,
) -> FastAPI:
    """The console app (``transport``: a test may route the service calls elsewhere;
    ``body_limits``: pages allowed larger bodies, see ``BODY_LIMITS``)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        if settings.secret_key_path is None:
            log.warning("no PRODIGY_SECRET_KEY_PATH: forms are signed with a per-process secret")
        log.info("console started", port=settings.http_port)
        try:
            yield
        finally:
            await app.state.services.aclose()
            log.info("console stopped")

    app = FastAPI(
        title="prodigy-users console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.csrf = CsrfSigner(load_secret(settings.secret_key_path), settings.csrf_max_age_s)
    app.state.services = Services(settings, transport)
    errors.install(app)
    # Inside the security middleware: a refusal gets the page headers too.
    overrides = [*body_limits, (imports.UPLOAD_PATH, settings.upload_max_bytes + UPLOAD_FRAMING)]
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, overrides=overrides, refusal=too_large
    )
    app.add_middleware(
        SecurityMiddleware,
        secure_cookies=settings.cookie_secure,
        trusted=settings.trusted_networks,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(health_router())
    for router in PAGES:
        app.include_router(router)
    return app


def serve(settings: Settings | None = None) -> None:
    """Run the console's HTTP server until stopped (``prodigy-users serve console``)."""
    settings = settings or Settings()
    config = uvicorn.Config(
        build_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    uvicorn.Server(config).run()
