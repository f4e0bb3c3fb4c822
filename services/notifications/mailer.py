"""SMTP: write the MIME message and hand it to the relay over reused connections.

Messages are written directly as bytes rather than through ``email.message``,
which costs about 3 ms of CPU per message: at thousands of emails a second that
alone would saturate a core. The format is plain RFC 5322/2045: a
``multipart/alternative`` with a quoted-printable UTF-8 text part and HTML part.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Protocol

import aiosmtplib

from .domain import is_permanent_smtp_code
from .settings import Settings
from .smtp_session import Broken, OnResult, Refused, SmtpSession
from .templates import Rendered

# Quoted-printable never contains "=_" ("=" is followed by hex digits or a line
# break), so this boundary cannot occur inside either part: one fixed boundary is
# safe, and spares parsers compiling a fresh boundary pattern for every message.
BOUNDARY = "=_prodigy-users_alternative"
# What goes between < and > in MAIL FROM / RCPT TO: one @, no spaces, brackets or
# line breaks (addresses come validated; this keeps the SMTP command intact).
_ADDRESS = re.compile(r"[^\s<>@,;:\\\"()\[\]]+@[^\s<>@,;:\\\"()\[\]]+")
# Subjects longer than this are folded (RFC 5322 recommends lines of at most 78).
_SUBJECT_FOLD = 70


@dataclass(frozen=True)
class MailMessage:
    """A message ready for the relay: the envelope and the bytes on the wire."""

    sender: str
    to: str
    message_id: str
    subject: str
    data: bytes

    @property
    def smtputf8(self) -> bool:
        """Whether an address needs SMTPUTF8 (RFC 6531)."""
        return not (self.sender.isascii() and self.to.isascii())


# Told what the relay answered to one message of a run, as soon as it answered:
# (index in the run, None if it took the message, else why not).
OnEach = Callable[[int, "DeliveryError | None"], None]


class Mailer(Protocol):
    """Sends a run of messages; for each, None (the relay took it) or why not.
    ``on_each`` (if given) hears of each answer the relay gives, the moment it gives it."""

    async def __call__(
        self, messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]: ...


class DeliveryError(Exception):
    """The relay did not take the message; ``permanent`` if trying again cannot help;
    not ``tried`` if it never got to the relay (the attempt does not count);
    ``relay_wide`` unless the relay refused this message's recipient or content (the
    relay was away or refused everyone: every email waits for the same fix)."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        tried: bool = True,
        relay_wide: bool = True,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.tried = tried
        self.relay_wide = relay_wide


@functools.lru_cache(maxsize=16)
def _sender(mail_from: str) -> tuple[str, str]:
    """(envelope address, From header) of the configured sender."""
    name, address = parseaddr(mail_from)
    return address, formataddr((name, address), charset="utf-8")


def _subject(subject: str) -> str:
    if subject.isascii() and len(subject) <= _SUBJECT_FOLD:
        return subject
    # Encoded words fold anywhere (a plain subject folds only at spaces).
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _part(content_type: str, body: str) -> bytes:
    # CRLF in, CRLF out (and CRLF soft breaks): the wire format, as SMTP wants it.
    crlf = body.replace("\r\n", "\n").replace("\n", "\r\n")
    encoded = binascii.b2a_qp(crlf.encode(), istext=True)
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Type: {content_type}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        + encoded
        + b"\r\n"
    )


def build_message(
    rendered: Rendered, *, sender: str, to: str, email_id: uuid.UUID | None = None
) -> MailMessage:
    """A multipart/alternative message: text first, HTML preferred by clients that can.

    The Message-ID comes from the delivery-log entry, so every attempt at one email
    carries the same id: a relay (or a test) can tell a resend from a new email.
    The subject is one line already (templates collapse it): no header injection.
    """
    address, from_header = _sender(sender)
    for checked in (address, to):
        if not _ADDRESS.fullmatch(checked):
            raise ValueError(f"not an address SMTP can carry: {checked!r}")
    domain = address.rpartition("@")[2] or "prodigy-users"
    message_id = f"<{email_id or uuid.uuid4()}@{domain}>"
    head = (
        f"From: {from_header}\r\n"
        f"To: {to}\r\n"
        f"Subject: {_subject(rendered.subject)}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"\r\n\r\n'
    )
    data = b"".join(
        (
            head.encode(),
            _part("text/plain", rendered.text),
            _part("text/html", rendered.html),
            f"--{BOUNDARY}--\r\n".encode(),
        )
    )
    return MailMessage(address, to, message_id, rendered.subject, data)


def delivery_error(exc: BaseException) -> DeliveryError:
    """What an SMTP failure means for the email.

    Permanent only when the relay refused *this* message for good: a 5xx to its
    recipient (RCPT) or to its content (DATA). A 5xx anywhere else (greeting,
    EHLO, authentication, our sender) says the relay or our configuration is
    wrong, which is the same for every email and may be fixed: retried with
    backoff like a refused connection or a 4xx.
    """
    if isinstance(exc, Refused):
        code, text = exc.reply
        if exc.stage == "rcpt":
            return DeliveryError(
                f"recipient refused: {code} {text}",
                permanent=is_permanent_smtp_code(code),
                relay_wide=False,
            )
        if exc.stage == "data":
            return DeliveryError(
                f"message refused: {code} {text}",
                permanent=is_permanent_smtp_code(code),
                relay_wide=False,
            )
        return DeliveryError(f"sender refused: {code} {text}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code}: {exc.message}")
    if isinstance(exc, asyncio.IncompleteReadError):
        return DeliveryError("the relay hung up mid-transaction")
    if isinstance(exc, TimeoutError):
        return DeliveryError("the relay did not answer in time")
    if isinstance(exc, ValueError | UnicodeEncodeError):
        return DeliveryError(f"address cannot be sent: {exc}", permanent=True, relay_wide=False)
    return DeliveryError(f"{type(exc).__name__}: {exc}")


class _Connection:
    """A slot of the pool: one session at a time, renewed when it is used up or idle."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: SmtpSession | None = None

    def _usable(self, now: float) -> SmtpSession | None:
        s, session = self._settings, self._session
        if (
            session is not None
            and session.alive
            and session.sent < s.smtp_messages_per_connection
            # Relays drop idle sessions; do not find out by failing a send.
            and now - session.last_used < s.smtp_idle_s
        ):
            return session
        return None

    async def _open(self) -> SmtpSession:
        await self.close()
        self._session = await SmtpSession.open(self._settings)
        return self._session

    async def send(
        self, messages: Sequence[MailMessage], on_result: OnResult | None = None
    ) -> list[Refused | None]:
        session = self._usable(time.monotonic())
        if session is None:
            return await (await self._open()).send(messages, on_result)
        try:
            return await session.send(messages, on_result)
        except Broken as exc:
            if exc.results or exc.content_sent:
                raise
            # The relay had closed a session we kept open, before any of this run
            # reached it: that says nothing about these emails. Again on a new one.
            return await (await self._open()).send(messages, on_result)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _error(result: Refused | None) -> DeliveryError | None:
    return None if result is None else delivery_error(result)


class SmtpPool:
    """The mailer: up to ``send_concurrency`` SMTP sessions kept open, each run of
    messages sent on an idle one (many messages per session: no handshake each)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(settings.send_concurrency)
        self._all: set[_Connection] = set()

    async def __call__(
        self, messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        """Send ``messages`` in order; for each, None (taken) or the ``DeliveryError``.
        ``on_each`` hears of each answer of the relay as it comes (see ``Mailer``)."""
        if not messages:
            return []
        on_result: OnResult | None = None
        if on_each is not None:
            hook = on_each

            def on_result(index: int, result: Refused | None) -> None:
                hook(index, _error(result))

        async with self._slots:
            connection = self._idle.pop() if self._idle else _Connection(self._settings)
            self._all.add(connection)
            try:
                results = await connection.send(messages, on_result)
            except Broken as exc:
                await self._drop(connection)
                done = [_error(r) for r in exc.results]
                untried = DeliveryError("not tried: the SMTP session broke first", tried=False)
                rest = len(messages) - len(done) - 1
                return [*done, delivery_error(exc.cause), *([untried] * rest)]
            except Exception as exc:
                # No session (the relay is away, refused us, TLS or login failed): every
                # email of the run had its attempt, and failed it.
                await self._drop(connection)
                error = delivery_error(exc)
                return [error] * len(messages)
            self._idle.append(connection)
            return [_error(r) for r in results]

    async def _drop(self, connection: _Connection) -> None:
        await connection.close()
        self._all.discard(connection)

    async def close(self) -> None:
        """Say goodbye on every open session."""
        connections, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


def smtp_mailer(settings: Settings) -> SmtpPool:
    """The mailer the delivery worker uses: the configured relay, sessions reused."""
    return SmtpPool(settings)
