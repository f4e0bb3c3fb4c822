"""The console's wiring root: ``build_app(settings)`` returns the ASGI app.

Page modules each own an area (``auth``, ``home``, ``users``, ``record``, ``public``); a new
area is a new module with its ``router`` (from ``routing.page_router``) and its
templates, added to ``PAGES`` below.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from prodigy_users.runtime.logging import configure_logging, get_logger

from . import auth, errors, home, public, record, users
from .clients import Services
from .csrf import CsrfSigner
from .secret import load_secret
from .security import SecurityMiddleware
from .settings import Settings

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

# Every area of pages, in the order their routes are matched (the users table's
# /users/export before the record's /users/{account}).
PAGES: tuple[APIRouter, ...] = (
    auth.router,
    home.router,
    users.router,
    record.router,
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


def build_app(
    settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The console app (``transport``: a test may route the service calls elsewhere)."""
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
    app.add_middleware(SecurityMiddleware, secure_cookies=settings.cookie_secure)
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
    )
    uvicorn.Server(config).run()
