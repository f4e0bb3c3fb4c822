"""The one way the console talks to the services: a shared ``httpx.AsyncClient``.

Every answer becomes a typed result: ``Ok`` (2xx) or ``Problem`` (an RFC 9457
answer, or anything else that is not a success). What no page can handle by
itself is raised instead: ``SignInRequired`` for a 401 (the token expired or is
not valid: sign in again), ``ServiceDown`` when a service does not answer, times
out or fails (5xx). ``errors.py`` turns those into pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from prodigy_users.runtime.logging import correlation_id, get_logger

from .settings import Settings

log = get_logger(__name__)

Service = Literal["identity", "membership", "notifications", "reporting"]

# How a page names each service to a person ("The reports service is not answering").
SERVICE_LABELS: dict[str, str] = {
    "identity": "sign-in service",
    "membership": "membership service",
    "notifications": "email service",
    "reporting": "reports service",
}

JSON = Mapping[str, Any]
Params = Mapping[str, str] | Sequence[tuple[str, str]]

# The address of the person whose page request makes the calls (set per request by
# ``security.SecurityMiddleware``): sent on as ``X-Forwarded-For``, so the services
# throttle that person, not the console (they trust it as a proxy).
client_ip: ContextVar[str | None] = ContextVar("console_client_ip", default=None)


@dataclass(frozen=True)
class FieldError:
    """A service's complaint about one field (``errors[]`` of a problem)."""

    field: str
    message: str


@dataclass(frozen=True)
class Problem:
    """A service said no: its RFC 9457 problem details, typed."""

    status: int
    slug: str
    title: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    retry_after: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, response: httpx.Response) -> Problem:
        """Read a non-2xx answer (problem JSON, or anything else a proxy might send)."""
        body: Any = None
        if "json" in response.headers.get("content-type", ""):
            try:
                body = response.json()
            except ValueError:
                body = None
        retry = response.headers.get("retry-after")
        retry_after = int(retry) if retry and retry.isdigit() else None
        if not isinstance(body, dict):
            return cls(
                response.status_code,
                f"http-{response.status_code}",
                response.reason_phrase or "Error",
                "The service refused this request.",
                retry_after=retry_after,
            )
        errors = tuple(
            FieldError(str(e.get("field", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        )
        known = {"type", "title", "status", "detail", "errors", "instance"}
        return cls(
            status=response.status_code,
            slug=str(body.get("type", "")).rsplit("/", 1)[-1] or f"http-{response.status_code}",
            title=str(body.get("title") or "Error"),
            detail=str(body.get("detail") or body.get("title") or "The request was refused."),
            errors=errors,
            retry_after=retry_after,
            extra={k: v for k, v in body.items() if k not in known},
        )

    @classmethod
    def of_json(cls, body: JSON) -> Problem:
        """A problem embedded in another answer (a failed operation's ``problem``)."""
        errors = tuple(
            FieldError(str(e.get("field", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
        )
        return cls(
            status=int(body.get("status") or 400),
            slug=str(body.get("type", "")).rsplit("/", 1)[-1],
            title=str(body.get("title") or "Error"),
            detail=str(body.get("detail") or "The request was refused."),
            errors=errors,
        )


@dataclass(frozen=True)
class Ok:
    """A 2xx answer and its JSON body (``None`` for an empty one)."""

    status: int
    body: Any
    headers: httpx.Headers

    def json(self) -> dict[str, Any]:
        """The body as an object (``{}`` when empty)."""
        return dict(self.body) if isinstance(self.body, dict) else {}


Result = Ok | Problem


class SignInRequired(Exception):
    """A service answered 401: the session is over; the person signs in again."""


class ServiceDown(Exception):
    """A service did not answer in time, could not be reached, or failed (5xx)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason

    @property
    def label(self) -> str:
        """How a page names the service."""
        return SERVICE_LABELS.get(self.service, f"{self.service} service")


@dataclass
class Download:
    """A streamed answer (an export): its headers and its bytes, read as they come."""

    response: httpx.Response

    @property
    def headers(self) -> httpx.Headers:
        """The service's headers (content type, disposition)."""
        return self.response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; the connection is released at the end."""
        try:
            async for chunk in self.response.aiter_raw():
                yield chunk
        finally:
            await self.response.aclose()

    def passed_on(self, default_type: str) -> StreamingResponse:
        """The answer streamed on to the browser as the service sent it (its type and
        file name), never cached; the connection is released when it ends or breaks."""
        headers = {"Cache-Control": "no-store"}
        disposition = self.headers.get("content-disposition")
        if disposition:
            headers["Content-Disposition"] = disposition
        return StreamingResponse(
            self.chunks(),
            media_type=self.headers.get("content-type", default_type),
            headers=headers,
            background=BackgroundTask(self.response.aclose),
        )


class Services:
    """The four services' HTTP APIs, one shared connection pool (``app.state.services``)."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.bases: dict[str, str] = {
            "identity": settings.identity_url,
            "membership": settings.membership_url,
            "notifications": settings.notifications_url,
            "reporting": settings.reporting_url,
        }
        timeout = httpx.Timeout(
            settings.service_timeout_s, connect=min(3.0, settings.service_timeout_s)
        )
        self.http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the pool (at shutdown)."""
        await self.http.aclose()

    def _request(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        token: str | None,
        json: Any,
        params: Params | None,
        files: Any = None,
        data: Any = None,
    ) -> httpx.Request:
        headers = {"Accept": "application/json"}
        cid = correlation_id.get()
        if cid:
            headers["X-Correlation-ID"] = cid
        if token:
            headers["Authorization"] = f"Bearer {token}"
        ip = client_ip.get()
        if ip:
            headers["X-Forwarded-For"] = ip
        query = params if params is None or isinstance(params, Mapping) else tuple(params)
        return self.http.build_request(
            method,
            self.bases[service] + path,
            json=json,
            params=query,
            headers=headers,
            files=files,
            data=data,
        )

    async def _send(
        self, service: Service, request: httpx.Request, *, stream: bool = False
    ) -> httpx.Response:
        try:
            return await self.http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            log.warning("service timed out", service=service, path=request.url.path)
            raise ServiceDown(service, "timeout") from exc
        except httpx.TransportError as exc:
            log.warning("service unreachable", service=service, error=type(exc).__name__)
            raise ServiceDown(service, "unreachable") from exc

    @staticmethod
    def _check(service: Service, response: httpx.Response, *, signing_in: bool) -> None:
        if response.status_code >= 500:
            log.warning("service failed", service=service, status=response.status_code)
            raise ServiceDown(service, f"status {response.status_code}")
        if response.status_code == 401 and not signing_in:
            raise SignInRequired()

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Params | None = None,
        files: Any = None,
        data: Any = None,
        signing_in: bool = False,
    ) -> Result:
        """One call; ``signing_in``: a 401 is an answer (wrong password), not an expiry."""
        request = self._request(
            service, method, path, token=token, json=json, params=params, files=files, data=data
        )
        response = await self._send(service, request)
        self._check(service, response, signing_in=signing_in)
        if response.is_success:
            body: Any = None
            if response.content and "json" in response.headers.get("content-type", ""):
                body = response.json()
            return Ok(response.status_code, body, response.headers)
        return Problem.of(response)

    async def download(
        self, service: Service, path: str, *, token: str, params: Params | None = None
    ) -> Download | Problem:
        """A GET whose body is passed on as it arrives (never held whole)."""
        request = self._request(service, "GET", path, token=token, json=None, params=params)
        request.headers["Accept"] = "*/*"
        response = await self._send(service, request, stream=True)
        if not response.is_success:
            await response.aread()
            await response.aclose()
            self._check(service, response, signing_in=False)
            return Problem.of(response)
        return Download(response)
