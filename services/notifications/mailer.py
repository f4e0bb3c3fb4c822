"""SMTP: build the MIME message and hand it to the relay."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from .domain import is_permanent_smtp_code
from .settings import Settings
from .templates import Rendered

Mailer = Callable[[EmailMessage], Awaitable[None]]


class DeliveryError(Exception):
    """The relay did not take the message; ``permanent`` if trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def build_message(
    rendered: Rendered, *, sender: str, to: str, email_id: uuid.UUID | None = None
) -> EmailMessage:
    """A multipart/alternative message: text first, HTML preferred by clients that can.

    The Message-ID comes from the delivery-log entry, so every attempt at one email
    carries the same id: a relay (or a test) can tell a resend from a new email.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = (
        f"<{email_id}@{domain or 'prodigy-users'}>" if email_id else make_msgid(domain=domain)
    )
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def smtp_mailer(settings: Settings) -> Mailer:
    """A mailer that sends through the configured SMTP relay, one connection per message."""

    async def send(message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(
                f"recipient refused: {reason}",
                permanent=bool(codes) and all(is_permanent_smtp_code(c) for c in codes),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.code}: {exc.message}", permanent=is_permanent_smtp_code(exc.code)
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    return send
