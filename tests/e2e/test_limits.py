"""Request-body limits and security headers on the running services.

A 200 MB body to the unauthenticated sign-in once took identity from 109 MB to 843 MB
before its 422. Now it is refused at once, declared or streamed, and the process
does not grow: the test streams the body from a generator (never held whole) over a
plain socket, reading the answer while it sends, and samples identity's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from prodigy_users.runtime.headers import API_HEADERS, DOCS_CSP
from tests.support import Api, bearer

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "membership", "notifications", "reporting")
MB = 1024 * 1024
# What "does not grow" means: a few MB of noise, against the 700 MB it grew before.
RSS_BUDGET = 10 * MB


class Upload:
    """The outcome of streaming a body at a service."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.head = b""
        self.sent = 0
        self.seconds = 0.0


async def stream_body(url: str, path: str, total: int, *, declare_length: bool) -> Upload:
    """POST ``total`` bytes to ``path``, 64 KiB at a time, with a Content-Length or
    chunked; stop sending as soon as an answer arrives or the server stops reading."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    framing = f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked"
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n"
        ).encode()
    )
    upload = Upload()
    answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    chunk = b'{"email": "' + b"a" * (64 * 1024 - 11)
    started = time.monotonic()
    try:
        while upload.sent < total and not answer.done():
            data = chunk[: total - upload.sent]
            writer.write(data if declare_length else b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            upload.sent += len(data)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server answered and closed: the answer is read below
    upload.head = await asyncio.wait_for(answer, timeout=30)
    upload.seconds = time.monotonic() - started
    upload.status = int(upload.head.split(b" ", 2)[1])
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return upload


async def peak_rss(pid: int, until: asyncio.Task[Upload]) -> int:
    """The largest resident size of ``pid`` seen every 10 ms until ``until`` ends."""
    process = psutil.Process(pid)
    peak: int = process.memory_info().rss
    while not until.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.01)
    last: int = process.memory_info().rss
    return max(peak, last)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_a_200_mb_body_to_sign_in_is_refused_at_once_and_costs_no_memory(
    controllable: Any, urls: dict[str, str], declare_length: bool
) -> None:
    pid = controllable.pids()["identity"]
    before = psutil.Process(pid).memory_info().rss
    upload = asyncio.create_task(
        stream_body(urls["identity"], "/v1/auth/token", 200 * MB, declare_length=declare_length)
    )
    peak = await peak_rss(pid, upload)
    done = upload.result()
    assert done.status == 413, done.head
    assert b"application/problem+json" in done.head
    # Refused long before the client could send it all, and quickly.
    assert done.sent < 50 * MB, done.sent
    assert done.seconds < 10, done.seconds
    assert peak - before < RSS_BUDGET, f"identity grew by {(peak - before) / MB:.1f} MB"


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_refuses_a_body_over_64_kib(api: Api, service: str) -> None:
    r = await api.http.post(api.url(service, "/v1/anything"), content=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413
    assert r.json()["type"].endswith("/request-too-large")
    assert r.json()["detail"] == "The request body is larger than the 64 KiB this call accepts."
    fits = await api.http.post(
        api.url("identity", "/v1/auth/token"),
        json={"email": "a@example.org", "password": "x" * 1000},
    )
    assert fits.status_code == 401  # within the limit: the call runs


async def test_an_upload_may_be_larger_than_the_limit(api: Api) -> None:
    admin = await api.create_department()
    rows = "".join(f"Person {n},person-{n}@example.org,member\n" for n in range(3000))
    data = ("name,email,role\n" + rows).encode()
    assert len(data) > 64 * 1024
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/imports"),
        params={"dry_run": "true"},
        files={"file": ("people.csv", io.BytesIO(data), "text/csv")},
        headers=admin.headers,
    )
    assert r.status_code == 202, r.text


async def test_the_console_refuses_a_form_over_64_kib_with_a_page(api: Api, stack: Any) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: the console's URL is the stack's")
    r = await api.http.post(
        stack.url("console") + "/sign-in",
        content=b"email=" + b"a" * (64 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "larger than the 64 KiB this page accepts" in r.text
    # The console's own page headers, as on every page of it.
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("service", SERVICES)
async def test_every_answer_of_every_service_carries_the_security_headers(
    api: Api, service: str
) -> None:
    answers = [
        await api.http.get(api.url(service, "/healthz")),
        await api.http.get(api.url(service, "/openapi.json")),
        await api.http.get(api.url(service, "/v1/no-such-route")),
        await api.http.post(api.url(service, "/v1/anything"), content=b"x" * (65 * 1024)),
    ]
    if service != "identity":  # a route that needs a token, without one and with a bad one
        path = {
            "membership": "/v1/operations/00000000-0000-0000-0000-000000000001",
            "notifications": "/v1/notifications/departments/"
            "00000000-0000-0000-0000-000000000001/emails",
            "reporting": "/v1/reports/departments/00000000-0000-0000-0000-000000000001/users",
        }[service]
        answers.append(await api.http.get(api.url(service, path), headers=bearer("bad")))
    else:
        answers.append(await api.http.get(api.url(service, "/v1/me"), headers=bearer("bad")))
    assert [a.status_code for a in answers][:4] == [200, 200, 404, 413]
    assert answers[-1].status_code == 401
    for answer in answers:
        for name, value in API_HEADERS.items():
            assert answer.headers.get(name) == value, (service, answer.request.url, name)
    docs = await api.http.get(api.url(service, "/docs"))
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == DOCS_CSP
    assert docs.headers["x-frame-options"] == "DENY"
    assert docs.headers["cache-control"] == "no-store"
