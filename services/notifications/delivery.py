"""The delivery worker: claims due emails, opens their tokens, renders, sends, records.

Every replica runs one. A claim marks an email ``sending`` under a lease and
counts the attempt, so two replicas never send the same email; a worker that
dies mid-send leaves a lease that runs out, and the email is tried again.
New emails wake the worker through PostgreSQL LISTEN/NOTIFY (delivered when the
queuing transaction commits); a short poll is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.keys import load_private_key, unseal
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.metrics import Metrics
from prodigy_users.runtime.service import Runtime

from . import service
from .domain import (
    OutgoingEmail,
    RetryPolicy,
    department_label,
    invitation_url,
    link_expired,
    link_kind,
    role_label,
    set_password_url,
)
from .mailer import DeliveryError, Mailer, build_message, smtp_mailer
from .settings import Settings
from .store import EMAILS_CHANNEL
from .templates import TEMPLATES, render

log = get_logger(__name__)

# Never spin: something due but locked by another replica's claim is retried this soon.
MIN_WAIT_S = 0.05
SHUTDOWN_GRACE_S = 3.0


class ComposeError(Exception):
    """The email cannot be written (no key, a token we cannot open, an expired link)."""


class Delivery:
    """Runs until cancelled: ``await Delivery(engine, settings, mailer, key).run()``."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        mailer: Mailer,
        seal_key: rsa.RSAPrivateKey | None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._engine = engine
        self._settings = settings
        self._mailer = mailer
        self._seal_key = seal_key
        self._policy = RetryPolicy(
            settings.send_max_attempts, settings.send_backoff_base_s, settings.send_backoff_max_s
        )
        self._lease = timedelta(seconds=settings.send_lease_s)
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Listen, claim, send, repeat; survives database outages."""
        backoff = 0.2
        try:
            while True:
                try:
                    async with self._listening():
                        backoff = 0.2
                        await self._serve()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("delivery interrupted", error=repr(exc), retry_in=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await self._drain()

    async def run_once(self) -> int:
        """Claim what is due (up to the free capacity) and start sending it; returns the count."""
        free = self._settings.send_batch_size - len(self._inflight)
        if free <= 0:
            return 0
        claimed = await service.claim_due(self._engine, limit=free, lease=self._lease)
        for email in claimed:
            task = asyncio.create_task(self.send(email), name=f"email-{email.id}")
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    async def send(self, email: OutgoingEmail) -> None:
        """One attempt at one claimed email, recorded in its own unit of work."""
        try:
            message = self.compose(email, datetime.now(UTC))
        except ComposeError as exc:
            await self._failed(email, str(exc), permanent=True)
            return
        try:
            await self._mailer(message)
        except DeliveryError as exc:
            await self._failed(email, exc.reason, permanent=exc.permanent)
            return
        if await service.record_sent(self._engine, email):
            self._count("sent")
            log.info(
                "email sent",
                email_id=str(email.id),
                template=email.template,
                attempts=email.attempts,
            )
        else:
            log.warning("email sent after its lease ran out", email_id=str(email.id))

    def compose(self, email: OutgoingEmail, now: datetime) -> EmailMessage:
        """Open the token and render the message (the token exists in memory only here)."""
        if email.template not in TEMPLATES:
            raise ComposeError(f"unknown template {email.template!r}")
        kind = link_kind(email.template)
        if kind is not None and email.sealed_token is None:
            raise ComposeError("the email has no token to send")
        if link_expired(email.link_expires_at, now):
            raise ComposeError("the link expired before it could be sent")
        if kind == "set_password":
            url = set_password_url(self._settings.public_base_url, self._open(email))
        elif kind == "invitation":
            url = invitation_url(self._settings.app_base_url, self._open(email))
        else:
            url = self._settings.app_base_url  # no secret: where to sign in
        context: dict[str, Any] = {
            "name": email.recipient_name,
            "email": email.to,
            "department": department_label(email.department_name),
            "url": url,
            "expires_at": email.link_expires_at,
            # A reset with a department was asked for by one of its admins.
            "admin_asked": email.department_id is not None,
            "role": role_label(email.details.get("role", "member")),
            "inviter": email.details.get("inviter") or None,
        }
        try:
            rendered = render(email.template, context)
        except Exception as exc:
            raise ComposeError(f"cannot render {email.template!r}: {exc!r}") from exc
        return build_message(
            rendered, sender=self._settings.mail_from, to=email.to, email_id=email.id
        )

    def _open(self, email: OutgoingEmail) -> str:
        if self._seal_key is None:
            raise ComposeError("no sealing key configured (PRODIGY_SEAL_PRIVATE_KEY_PATH)")
        assert email.sealed_token is not None
        try:
            return unseal(self._seal_key, email.sealed_token)
        except Exception as exc:
            # Never log the sealed value; the type of error is enough.
            raise ComposeError(f"cannot open the sealed token ({type(exc).__name__})") from None

    async def _failed(self, email: OutgoingEmail, error: str, *, permanent: bool) -> None:
        status = await service.record_failure(
            self._engine, email, error, self._policy, permanent=permanent
        )
        if status is not None:
            self._count(status)
        log.warning(
            "email not sent",
            email_id=str(email.id),
            template=email.template,
            attempts=email.attempts,
            error=error,
            now=status,
        )

    def _count(self, status: str) -> None:
        if self._metrics is not None:
            self._metrics.emails.labels(self._settings.service_name, status).inc()

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[None]:
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(EMAILS_CHANNEL, self._on_notify)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(EMAILS_CHANNEL, self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The email keeps its lease and is tried again once it runs out.
            log.error("email delivery crashed", task=task.get_name(), error=repr(exc))
        self._wakeup.set()  # capacity freed

    async def _serve(self) -> None:
        while True:
            self._wakeup.clear()
            free = self._settings.send_batch_size - len(self._inflight)
            claimed = await self.run_once()
            if free > 0 and claimed == free:
                continue  # there may be more due right now
            timeout = self._settings.delivery_poll_interval_s
            if free > 0:
                due_in = await service.seconds_until_next_due(self._engine)
                if due_in is not None:
                    timeout = max(min(due_in, timeout), MIN_WAIT_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _drain(self) -> None:
        # Let sends in flight finish briefly so a clean stop leaves no lease to wait out.
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=SHUTDOWN_GRACE_S)
        for task in list(self._inflight):
            task.cancel()


def _settings(runtime: Runtime) -> Settings:
    settings = runtime.settings
    assert isinstance(settings, Settings), "notifications runs with its own Settings"
    return settings


def _seal_key(settings: Settings) -> rsa.RSAPrivateKey | None:
    if settings.seal_private_key_path is None:
        log.error("no PRODIGY_SEAL_PRIVATE_KEY_PATH: emails with a link will fail")
        return None
    key: rsa.RSAPrivateKey = load_private_key(settings.seal_private_key_path)
    return key


async def deliver(runtime: Runtime) -> None:
    """Background worker of the notifications service: delivers the email queue forever."""
    settings = _settings(runtime)
    delivery = Delivery(
        runtime.engine, settings, smtp_mailer(settings), _seal_key(settings), runtime.metrics
    )
    runtime.state["delivery"] = delivery
    await delivery.run()
