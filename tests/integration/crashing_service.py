"""A service built by ``runtime.service.build_app`` like every other, with routes that
fail in the ways a bug would: run as ``python -m tests.integration.crashing_service
PORT`` by ``tests/integration/runtime/test_unexpected_errors.py`` (a process of its
own: its lifespan configures logging for the whole process, and its log is what the
test reads)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from prodigy_users.runtime.service import ServiceSpec, serve
from prodigy_users.runtime.settings import ServiceSettings

router = APIRouter()


@router.get("/boom")
async def boom() -> dict[str, str]:
    """A bug: an exception no handler knows."""
    raise RuntimeError("boom: a bug nobody foresaw")


@router.get("/fine")
async def fine() -> dict[str, bool]:
    """The answer the next request on the connection must get."""
    return {"ok": True}


@router.get("/broken-stream")
async def broken_stream() -> StreamingResponse:
    """A stream that fails after its first chunk: half an answer is already out."""

    def chunks() -> Iterator[bytes]:
        yield b"first chunk\n"
        raise RuntimeError("the stream broke")

    return StreamingResponse(chunks(), media_type="text/plain")


def main(port: int) -> None:
    """Serve on ``port``; no database or broker is reachable (none is needed here)."""
    settings = ServiceSettings(
        service_name="crashy",
        http_port=port,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none",
        kafka_bootstrap_servers="127.0.0.1:9",
        kafka_create_topics=False,
        outbox_poll_interval_s=60.0,
    )
    spec = ServiceSpec(
        "crashy", settings, "Crashy", "Fails on purpose.", routers=[router], migrate_on_start=False
    )
    serve(spec)


if __name__ == "__main__":
    main(int(sys.argv[1]))
