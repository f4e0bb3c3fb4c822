"""Mail capture for the dev stack: a real SMTP server (aiosmtpd) that keeps every
message, and an HTTP view of them (``GET /messages``, ``DELETE /messages``).

It runs on the caller's event loop. Messages are also appended to a JSON-lines
file, so what was captured survives a restart of ``prodigy-users up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Query, Response

from .process import StackError, check_port_free

log = logging.getLogger(__name__)


def parse_message(raw: bytes, mail_from: str | None, rcpt_tos: list[str]) -> dict[str, Any]:
    """A captured message as the HTTP view shows it."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    header_from = [addr for _, addr in getaddresses([str(msg.get("From", ""))]) if addr]
    return {
        "id": uuid.uuid4().hex,
        "from": header_from[0] if header_from else (mail_from or ""),
        "to": list(rcpt_tos),
        "subject": str(msg.get("Subject", "")),
        "message_id": str(msg.get("Message-ID", "")) or None,
        "text": _content(text),
        "html": _content(html),
        "received_at": datetime.now(UTC).isoformat(),
    }


def _content(part: object) -> str | None:
    if not isinstance(part, EmailMessage):
        return None
    content = part.get_content()
    # SMTP puts CRLF on the wire; hand back the lines as they were written.
    return str(content).replace("\r\n", "\n")


class MailStore:
    """The captured messages, oldest first, mirrored to a JSON-lines file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def load(self) -> None:
        """Read what an earlier run captured (unreadable lines are skipped)."""
        self.messages = []
        if self.path is None or not self.path.exists():
            return
        for line in self.path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    self.messages.append(item)

    def add(self, message: dict[str, Any]) -> None:
        """Keep ``message`` (and append it to the file)."""
        self.messages.append(message)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(message) + "\n")
        self.changed.set()

    def clear(self) -> None:
        """Forget every message."""
        self.messages = []
        if self.path is not None and self.path.exists():
            self.path.write_text("")

    def select(self, to: str | None = None) -> list[dict[str, Any]]:
        """The messages (to one recipient if ``to`` is given), newest last."""
        if to is None:
            return list(self.messages)
        wanted = to.strip().lower()
        return [m for m in self.messages if wanted in (a.lower() for a in m.get("to", []))]


class _Handler:
    """aiosmtpd handler: every message accepted is parsed and stored."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            message = parse_message(raw, envelope.mail_from, list(envelope.rcpt_tos))
        except Exception as exc:  # a broken message is the sender's bug: say so, keep going
            log.warning("mail capture: could not parse a message: %r", exc)
            return "554 Message could not be parsed"
        self.store.add(message)
        log.info("mail capture: %s -> %s: %s", message["from"], message["to"], message["subject"])
        return "250 Message accepted for delivery"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the supervisor owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def build_app(store: MailStore) -> FastAPI:
    """The HTTP view of the captured mail."""
    app = FastAPI(
        title="prodigy-users mail capture",
        description="Every email the dev stack sent, newest last.",
        version="1.0.0",
    )

    @app.get("/messages", operation_id="list_messages")
    async def list_messages(
        to: str | None = Query(default=None, description="Only mail to this address."),
    ) -> list[dict[str, Any]]:
        """The captured messages, newest last."""
        return store.select(to)

    @app.delete("/messages", status_code=204, operation_id="clear_messages")
    async def clear_messages() -> Response:
        """Forget every captured message."""
        store.clear()
        return Response(status_code=204)

    return app


class MailCapture:
    """SMTP on ``smtp_port`` plus the HTTP view on ``http_port``, on the running loop."""

    def __init__(
        self, host: str, smtp_port: int, http_port: int, store_path: Path | None = None
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.store = MailStore(store_path)
        self._smtp: asyncio.Server | None = None
        self._sessions: set[asyncio.BaseTransport] = set()
        self._http: _Server | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP view."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The captured messages, newest last."""
        return self.store.select()

    async def start(self) -> None:
        """Listen for SMTP and HTTP; load what an earlier run captured."""
        check_port_free(self.host, self.smtp_port, "the mail capture (SMTP)")
        check_port_free(self.host, self.http_port, "the mail capture (HTTP view)")
        self.store.load()
        loop = asyncio.get_running_loop()
        handler = _Handler(self.store)
        sessions = self._sessions

        class _SMTP(SMTP):
            _own: asyncio.BaseTransport | None = None

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self._own = transport
                sessions.add(transport)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                if self._own is not None:
                    sessions.discard(self._own)
                super().connection_lost(exc)

        self._smtp = await loop.create_server(
            # hostname given: aiosmtpd would otherwise ask DNS for our FQDN.
            lambda: _SMTP(
                handler, hostname="mailcapture", enable_SMTPUTF8=True, loop=loop, timeout=60
            ),
            self.host,
            self.smtp_port,
        )
        config = uvicorn.Config(
            build_app(self.store),
            host=self.host,
            port=self.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._http = _Server(config)
        self._http_task = asyncio.create_task(self._serve_http(), name="mailcapture-http")
        while not self._http.started:
            if self._http_task.done():
                await self.stop()
                raise StackError(
                    f"the mail capture HTTP view could not listen on {self.host}:{self.http_port}"
                )
            await asyncio.sleep(0.01)
        log.info(
            "mail capture: SMTP on %s:%d, messages at %s/messages (%d kept)",
            self.host,
            self.smtp_port,
            self.url,
            len(self.store.messages),
        )

    async def _serve_http(self) -> None:
        assert self._http is not None
        # uvicorn exits the process on a bind failure; here it only ends this task.
        with contextlib.suppress(SystemExit):
            await self._http.serve()

    async def stop(self) -> None:
        """Stop both servers (idempotent)."""
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 5)
        self._http = None
        self._http_task = None
        if self._smtp is not None:
            self._smtp.close()
            for transport in list(self._sessions):
                transport.close()
            await self._smtp.wait_closed()
            self._smtp = None

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        within: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` messages match ``predicate`` (a callable on a message)."""
        async with asyncio.timeout(within):
            while True:
                found = [m for m in self.store.messages if predicate is None or predicate(m)]
                if len(found) >= count:
                    return found
                self.store.changed.clear()
                await self.store.changed.wait()
