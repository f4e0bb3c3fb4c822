"""An unexpected exception is a problem-details 500, logged with the request's
correlation id and the traceback, and the keep-alive connection it came on still
answers the next request (it used to be closed, so that request was reset).

Why it was closed: Starlette's ``ServerErrorMiddleware`` sends its plain-text 500 and
then raises the exception again; uvicorn, seeing an app raise after its answer
started, closes the connection. ``runtime.problems.UnexpectedErrors`` ends the
exception with the answer instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prodigy_users.stack.supervisor import free_ports
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[3]


class Answer:
    """One HTTP/1.1 response read off a raw connection."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    else:  # chunked
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readline(), 10)).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    return Answer(status, headers, body)


def request(path: str, cid: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: crashy\r\nX-Correlation-ID: {cid}\r\n\r\n".encode()


async def started(address: str) -> None:
    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://{address}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(up, timeout=30, what="the crashing service")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_ports(1)[0]
    log = tmp_path / "crashy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crashing_service", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            yield f"127.0.0.1:{port}", log
        finally:
            proc.terminate()
            proc.wait(15)


async def test_the_next_request_on_the_connection_gets_its_answer(
    service: tuple[str, Path],
) -> None:
    address, log = service
    host, port = address.split(":")
    await started(address)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request("/boom", "cid-boom-1"))
        first = await read_answer(reader)
        assert first.status == 500
        assert first.headers["content-type"] == "application/problem+json"
        assert first.headers["x-correlation-id"] == "cid-boom-1"
        assert first.headers.get("connection", "").lower() != "close"
        problem = first.json()
        assert problem["type"].endswith("/internal-error") and problem["status"] == 500
        assert "boom" not in json.dumps(problem), "nothing of the exception leaks out"

        # The same connection (the same socket), the next request: its own answer.
        writer.write(request("/fine", "cid-fine-2"))
        second = await read_answer(reader)
        assert (second.status, second.json()) == (200, {"ok": True})
        assert second.headers["x-correlation-id"] == "cid-fine-2"

        # A third after another crash, to be sure it was not luck.
        writer.write(request("/boom", "cid-boom-3") + request("/fine", "cid-fine-4"))
        assert (await read_answer(reader)).status == 500
        assert (await read_answer(reader)).status == 200
    finally:
        writer.close()

    # The log has each crash once, with its correlation id and the traceback.
    async def logged() -> list[dict[str, Any]] | None:
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        found = [x for x in lines if x.get("event") == "unexpected error"]
        return found if len(found) >= 2 else None

    crashes = await wait_for(logged, timeout=10, what="the crash log lines")
    assert [c["correlation_id"] for c in crashes] == ["cid-boom-1", "cid-boom-3"]
    for crash in crashes:
        assert crash["level"] == "error" and crash["route"] == "/boom"
        assert "Traceback" in crash["exception"]
        assert "RuntimeError: boom: a bug nobody foresaw" in crash["exception"]


async def test_a_stream_that_breaks_midway_closes_its_connection(
    service: tuple[str, Path],
) -> None:
    # Half an answer is out: closing is the only way to tell the client it is cut short.
    address, log = service
    host, port = address.split(":")
    await started(address)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request("/broken-stream", "cid-stream"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        rest = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        assert b"first chunk" in rest and not rest.endswith(b"0\r\n\r\n"), "cut short"
    finally:
        writer.close()
    assert "the stream broke" in log.read_text()
