"""Mail capture for the dev stack: a real SMTP server (aiosmtpd) that keeps every
message, and an HTTP view of them (``GET /messages``, ``DELETE /messages``).

It runs on the caller's event loop. Messages are also appended to a JSON-lines
file, so what was captured survives a restart of ``prodigy-users up``.

Built to keep up with bulk sends (thousands of emails a second): a message is
kept as it arrived (its SMTP envelope and raw bytes, which is also what the file
holds) and parsed only when someone first reads it, once, with the fast
``compat32`` parser; its JSON is encoded once too. Messages are indexed by id and
recipient, so ``GET /messages?to=`` and ``?after=`` never scan or re-encode, and
a burst nobody reads costs no parsing at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import IO, Any, AnyStr

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Query, Response

from .process import StackError, check_port_free

log = logging.getLogger(__name__)

FLUSH_S = 0.05
DEFAULT_REJECTION = "550 5.1.1 Mailbox unavailable (rejected by the mail capture)"
_PARSER = BytesParser(policy=compat32)


def parse_message(
    raw: bytes,
    mail_from: str | None,
    rcpt_tos: list[str],
    *,
    id: str | None = None,
    received_at: str | None = None,
) -> dict[str, Any]:
    """A captured message as the HTTP view shows it."""
    msg = _PARSER.parsebytes(raw)
    header_from = [addr for _, addr in getaddresses([_header(msg, "From")]) if addr]
    text: str | None = None
    html: str | None = None
    for part in msg.walk():
        if part.is_multipart() or part.get("Content-Disposition", "").startswith("attachment"):
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = _content(part)
        elif kind == "text/html" and html is None:
            html = _content(part)
    return {
        "id": id or uuid.uuid4().hex,
        "from": header_from[0] if header_from else (mail_from or ""),
        "to": list(rcpt_tos),
        "subject": _header(msg, "Subject"),
        "message_id": _header(msg, "Message-ID").strip() or None,
        "text": text,
        "html": html,
        "received_at": received_at or datetime.now(UTC).isoformat(),
    }


def _header(msg: Message, name: str) -> str:
    """A header decoded to text (RFC 2047 words, and raw UTF-8 as SMTPUTF8 allows)."""
    value = msg.get(name)
    if value is None:
        return ""
    value = str(value)
    # compat32 keeps raw 8-bit header bytes as surrogates: they are UTF-8 (RFC 6532).
    value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):
        return value


def _content(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        content = payload.decode(charset, "replace")
    except LookupError:
        content = payload.decode("utf-8", "replace")
    # SMTP puts CRLF on the wire; hand back the lines as they were written.
    return content.replace("\r\n", "\n")


_PLAIN_ADDRESS = re.compile(r"<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@([A-Za-z0-9.-]+)>")


def _plain_address(arg: str, local_part_limit: int) -> tuple[str, str] | None:
    """``<local@domain> params`` -> (address, params) for plain ASCII addresses, else None."""
    match = _PLAIN_ADDRESS.match(arg.strip())
    if match is None or (local_part_limit and len(match[1]) > local_part_limit):
        return None
    return f"{match[1]}@{match[2]}", arg.strip()[match.end() :]


@dataclass
class Captured:
    """One message as it arrived: its SMTP envelope and raw bytes; parsed (and its
    JSON encoded) when it is first read."""

    id: str
    received_at: str
    mail_from: str | None
    to: list[str]
    raw: bytes | None = None
    message: dict[str, Any] | None = None
    line: bytes | None = None

    def parsed(self) -> dict[str, Any]:
        """The message as the HTTP view shows it."""
        if self.message is None:
            try:
                self.message = parse_message(
                    self.raw or b"",
                    self.mail_from,
                    self.to,
                    id=self.id,
                    received_at=self.received_at,
                )
            except Exception as exc:  # a broken message is the sender's bug: show that
                self.message = {
                    "id": self.id,
                    "from": self.mail_from or "",
                    "to": list(self.to),
                    "subject": "",
                    "message_id": None,
                    "text": None,
                    "html": None,
                    "received_at": self.received_at,
                    "error": f"could not be parsed: {exc!r}",
                }
            self.raw = None
        return self.message

    def json(self) -> bytes:
        """``parsed`` as JSON, encoded once."""
        if self.line is None:
            self.line = json.dumps(self.parsed()).encode()
        return self.line

    def stored(self) -> str:
        """The file's line: the envelope and the raw bytes (or, once parsed, the parse)."""
        if self.raw is None:
            return json.dumps(self.parsed())
        return json.dumps(
            {
                "id": self.id,
                "received_at": self.received_at,
                "mail_from": self.mail_from,
                "to": self.to,
                "raw": base64.b64encode(self.raw).decode(),
            }
        )

    @classmethod
    def from_stored(cls, item: dict[str, Any]) -> Captured:
        """A line of the file: raw (as received) or parsed (as an older capture wrote)."""
        if "raw" in item:
            return cls(
                str(item["id"]),
                str(item["received_at"]),
                item.get("mail_from"),
                [str(a) for a in item.get("to", [])],
                raw=base64.b64decode(item["raw"]),
            )
        return cls(
            str(item.get("id")),
            str(item.get("received_at")),
            item.get("from"),
            [str(a) for a in item.get("to", [])],
            message=item,
        )


class MailStore:
    """The captured messages, oldest first, mirrored to a JSON-lines file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.captured: list[Captured] = []
        self.changed = asyncio.Event()
        # Recipient (lowercase) -> the SMTP reply that refuses it (for failure tests).
        self.rejected: dict[str, str] = {}
        self._position: dict[str, int] = {}
        self._by_to: dict[str, list[int]] = {}
        self._file: IO[str] | None = None
        self._flush: asyncio.TimerHandle | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every captured message, parsed, oldest first."""
        return self.select()

    def load(self) -> None:
        """Read what an earlier run captured (unreadable lines are skipped).

        Without a file, what is in memory stays (a stop and start keeps it).
        """
        if self.path is None:
            return
        self._reset()
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    item = json.loads(line)
                    if isinstance(item, dict):
                        self._index(Captured.from_stored(item))

    def add_raw(self, raw: bytes, mail_from: str | None, to: list[str]) -> Captured:
        """Keep a message as it arrived (and append it to the file); parsed when read."""
        captured = Captured(uuid.uuid4().hex, datetime.now(UTC).isoformat(), mail_from, to, raw)
        self._index(captured)
        if self.path is not None:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(captured.stored() + "\n")
            self._flush_soon()
        self.changed.set()
        return captured

    def _flush_soon(self) -> None:
        # One write for a burst of messages rather than one each; on disk (for other
        # readers) within FLUSH_S. No fsync: it is a dev tool.
        if self._flush is not None:
            return
        try:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
        except RuntimeError:
            self.flush()

    def flush(self) -> None:
        """Write what was captured to the file now."""
        self._flush = None
        if self._file is not None:
            self._file.flush()

    def clear(self) -> None:
        """Forget every message."""
        self._reset()
        self.close()
        if self.path is not None and self.path.exists():
            self.path.write_text("")

    def close(self) -> None:
        """Close the file (reopened by the next ``add_raw``)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def select(self, to: str | None = None, after: str | None = None) -> list[dict[str, Any]]:
        """The messages (to one recipient if ``to`` is given; only those captured after
        the message with id ``after``, if given), newest last."""
        return [self.captured[i].parsed() for i in self._chosen(to, after)]

    def select_json(self, to: str | None = None, after: str | None = None) -> bytes:
        """``select`` as a JSON array, from each message's JSON, encoded once."""
        return b"[" + b",".join(self.captured[i].json() for i in self._chosen(to, after)) + b"]"

    def reject(self, address: str, reply: str = DEFAULT_REJECTION) -> None:
        """Refuse ``address`` at ``RCPT TO`` with ``reply``: a 5xx is a permanent failure,
        a 4xx a temporary one, and a 421 also closes the session."""
        self.rejected[address.strip().lower()] = reply

    def accept(self, address: str) -> None:
        """Stop refusing ``address``."""
        self.rejected.pop(address.strip().lower(), None)

    def _chosen(self, to: str | None, after: str | None) -> Iterable[int]:
        start = 0
        if after is not None:
            # An unknown id (e.g. cleared since) means: everything there is.
            start = self._position.get(after, -1) + 1
        if to is None:
            return range(start, len(self.captured))
        return [i for i in self._by_to.get(to.strip().lower(), []) if i >= start]

    def _index(self, captured: Captured) -> None:
        position = len(self.captured)
        self.captured.append(captured)
        self._position[captured.id] = position
        for address in {a.lower() for a in captured.to}:
            self._by_to.setdefault(address, []).append(position)

    def _reset(self) -> None:
        self.captured = []
        self._position = {}
        self._by_to = {}


class _Handler:
    """aiosmtpd handler: every message accepted is stored (and parsed when read)."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # Offer PIPELINING (RFC 2920): aiosmtpd answers commands in order from its
        # input buffer anyway, and clients that pipeline cost half the round trips.
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.store.rejected.get(address.lower())
        if refusal is not None:
            if refusal.startswith("421"):
                # 421: the server closes the channel (RFC 5321), as a relay going
                # down in the middle of a session would.
                server._close_after_reply = True  # type: ignore[attr-defined]
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        captured = self.store.add_raw(raw, envelope.mail_from, list(envelope.rcpt_tos))
        log.debug("mail capture: %s -> %s", captured.mail_from, captured.to)
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

    @app.get(
        "/messages",
        operation_id="list_messages",
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}},
    )
    async def list_messages(
        to: str | None = Query(default=None, description="Only mail to this address."),
        after: str | None = Query(
            default=None,
            description="Only mail captured after the message with this `id` (to read on "
            "from where you were; an unknown id gives everything).",
        ),
    ) -> Response:
        """The captured messages, newest last."""
        return Response(store.select_json(to, after), media_type="application/json")

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
        self.connections = 0  # SMTP sessions accepted so far (senders may reuse one)
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

    @property
    def running(self) -> bool:
        """Whether the SMTP server is listening."""
        return self._smtp is not None

    def reject(self, address: str, reply: str = DEFAULT_REJECTION) -> None:
        """Refuse mail to ``address`` from now on with ``reply`` (default: a permanent 550)."""
        self.store.reject(address, reply)

    def accept(self, address: str) -> None:
        """Take mail to ``address`` again."""
        self.store.accept(address)

    async def start(self) -> None:
        """Listen for SMTP and HTTP; load what an earlier run captured."""
        check_port_free(self.host, self.smtp_port, "the mail capture (SMTP)")
        check_port_free(self.host, self.http_port, "the mail capture (HTTP view)")
        self.store.load()
        loop = asyncio.get_running_loop()
        handler = _Handler(self.store)
        sessions = self._sessions
        capture = self

        class _SMTP(SMTP):
            _own: asyncio.BaseTransport | None = None
            _replies: list[bytes] | None = None
            _close_after_reply = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self._own = transport
                sessions.add(transport)
                capture.connections += 1
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                if self._own is not None:
                    sessions.discard(self._own)
                super().connection_lost(exc)

            async def push(self, status: AnyStr) -> None:
                # Replies written in one go: the replies to a pipelined group of
                # commands (and EHLO's lines) leave in one write, not one each.
                reply = status.encode("utf-8") if isinstance(status, str) else bytes(status)
                if self._replies is None:
                    self._replies = []
                    self.loop.call_soon(self._send_replies)
                self._replies.append(reply + b"\r\n")

            def _send_replies(self) -> None:
                replies, self._replies = self._replies or [], None
                if self.transport is not None:
                    self.transport.write(b"".join(replies))  # type: ignore[attr-defined]
                    if self._close_after_reply:
                        self.transport.close()

            def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
                # aiosmtpd runs every MAIL/RCPT address through the full RFC 5322
                # parser, a fifth of its time per message; the plain ``<a@b>`` every
                # client sends is split here, anything else still goes that way.
                plain = _plain_address(arg, self.local_part_limit)
                return plain if plain is not None else super()._getaddr(arg)

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
            len(self.store.captured),
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
        self.store.close()

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        within: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` messages match ``predicate`` (a callable on a message)."""
        found: list[dict[str, Any]] = []
        seen = 0
        async with asyncio.timeout(within):
            while True:
                captured = self.store.captured
                if len(captured) < seen:  # cleared meanwhile: start over
                    found, seen = [], 0
                # Only the messages that are new since the last look: a burst of
                # thousands must not make every wake-up rescan them all.
                new = [c.parsed() for c in captured[seen:]]
                found += [m for m in new if predicate is None or predicate(m)]
                seen = len(captured)
                if len(found) >= count:
                    return found
                self.store.changed.clear()
                await self.store.changed.wait()
