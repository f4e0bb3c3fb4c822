"""The delivery worker: claims due emails, opens their tokens, renders, sends, records.

Every replica runs one. A claim marks emails ``sending`` under a lease that names
the worker and counts the attempt, so two replicas never send the same email. A
worker is alive while it holds a PostgreSQL session lock on its id (taken on the
connection it listens and claims on): when its process dies the lock goes with
the session, and the next claim of any worker takes its leases over at once
(``domain.lease_orphaned``); the lease running out is only the last resort.

Built for bursts (a bulk import queues thousands of emails at once): emails are
claimed in batches into a small local queue, ``send_concurrency`` senders take
them from it, each on its own reused SMTP session, and each outcome is handed to
the recorder the moment the relay answers (not when the run ends), which commits
whatever is waiting, with its events, at once (a group commit): the time between
the relay's 250 and our record, when a crash sends an email twice, stays one
commit long. New emails wake the worker through PostgreSQL LISTEN/NOTIFY
(delivered when the queuing transaction commits); a short poll is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.runtime.keys import SealKey, load_seal_key, unseal
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.loops import keep_running
from prodigy_users.runtime.metrics import Metrics
from prodigy_users.runtime.service import Runtime
from prodigy_users.runtime.tracing import continue_trace

from . import service, store_delivery
from .domain import (
    MAX_WORKER_ID,
    Outcome,
    OutgoingEmail,
    RetryPolicy,
    change_email_url,
    confirm_email_url,
    department_label,
    door_url,
    invitation_url,
    lease_left_for_send,
    link_address_url,
    link_expired,
    link_kind,
    role_label,
    set_password_url,
    trace_carrier,
)
from .mailer import DeliveryError, Mailer, MailMessage, build_message, smtp_mailer
from .settings import Settings
from .smtp_session import SmtpSession
from .store import EMAILS_CHANNEL
from .templates import TEMPLATES, render

log = get_logger(__name__)

# Never spin: something due but locked by another replica's claim is retried this soon.
MIN_WAIT_S = 0.05
SHUTDOWN_GRACE_S = 3.0


class ComposeError(Exception):
    """The email cannot be written (no key, a token we cannot open, an expired link)."""


@dataclass(frozen=True)
class _Claimed:
    """A claimed email waiting for a sender, and when its lease runs out (monotonic)."""

    email: OutgoingEmail
    lease_ends: float
    opened: str | None = None  # its token, opened ahead (never logged or stored)
    holder: int | None = None  # the worker id it was claimed as


class Delivery:
    """Runs until cancelled: ``await Delivery(engine, settings, mailer, key).run()``."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        mailer: Mailer,
        seal_key: SealKey | None,
        metrics: Metrics | None = None,
        relay_answers: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._metrics = metrics
        # Whether the relay opens a session now (None: not asked; a send tells).
        self._relay_answers = relay_answers
        self._engine = engine
        self._settings = settings
        self._mailer = mailer
        self._seal_key = seal_key
        self._policy = RetryPolicy(
            settings.send_max_attempts, settings.send_backoff_base_s, settings.send_backoff_max_s
        )
        self._lease = timedelta(seconds=settings.send_lease_s)
        self._grace = timedelta(seconds=settings.send_takeover_grace_s)
        self._smtp_timeout = timedelta(seconds=settings.smtp_timeout_s)
        # Claim (and open the tokens of) the next batch while this many are left.
        self._low = max(settings.send_concurrency, settings.send_batch_size // 2)
        self._wakeup = asyncio.Event()
        # Set by an attempt the relay failed as a whole; a send after it means it is back.
        self._relay_failing = False
        self._queue: asyncio.Queue[_Claimed] = asyncio.Queue()
        self._busy = 0
        self._idle = asyncio.Event()  # no sender busy
        self._idle.set()
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._settled = asyncio.Event()  # nothing left to record
        self._settled.set()
        self._stopping = False
        # This worker's id while it holds the id's session lock (None: no database
        # session, so no lease of ours is safe from being taken over).
        self._holder: int | None = None
        # The senders and the recorder, once ``run`` started them.
        self._workers: tuple[list[asyncio.Task[None]], asyncio.Task[None]] | None = None

    @property
    def worker_id(self) -> int | None:
        """The id this worker claims emails as (None while it has no database session)."""
        return self._holder

    async def run(self) -> None:
        """Listen, claim, send, record, repeat; survives database and relay outages."""
        senders = [
            asyncio.create_task(self._sender(), name=f"email-sender-{n}")
            for n in range(self._settings.send_concurrency)
        ]
        recorder = asyncio.create_task(self._recorder(), name="email-recorder")
        self._workers = (senders, recorder)
        watch = asyncio.create_task(self._watch_relay(), name="email-relay-watch")
        try:
            await keep_running(self._listen_and_serve, what="email delivery")
        finally:
            watch.cancel()
            await self._drain(senders, recorder)

    async def _watch_relay(self) -> None:
        """While the relay fails every email, ask it now and then whether it answers."""
        if self._relay_answers is None:
            return
        while True:
            await asyncio.sleep(self._settings.send_relay_probe_s)  # a period, not a sync
            if self._relay_failing and await self._relay_answers():
                await self._relay_is_back()

    async def _listen_and_serve(self) -> None:
        async with self._listening() as conn:
            try:
                await self._serve(conn)
            except asyncio.CancelledError:
                # Stopping: finish (briefly) while our lock still says we live, or
                # another replica would take over, and send again, what is in flight.
                if self._workers is not None:
                    await self._drain(*self._workers)
                raise

    async def attempt(
        self, email: OutgoingEmail, lease_left: timedelta, opened: str | None = None
    ) -> Outcome:
        """One attempt at one claimed email (nothing recorded yet); ``opened``: its
        token, if it was opened already."""
        [outcome] = await self.attempt_run([(email, lease_left, opened)])
        return outcome

    async def attempt_run(
        self,
        run: list[tuple[OutgoingEmail, timedelta, str | None]],
        report: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """One attempt at each of a run of claimed emails, sent on one SMTP session
        (pipelined); what became of each, in order (nothing recorded yet).

        ``report`` hears of each outcome once: an email the relay answered, the
        moment it answered (not when the whole run is done: until its outcome is
        recorded, a crash sends it again), the others at the end.
        """
        outcomes: dict[int, Outcome] = {}
        messages: list[MailMessage] = []
        sent_as: list[int] = []
        now = datetime.now(UTC)
        for index, (email, lease_left, opened) in enumerate(run):
            if not lease_left_for_send(
                lease_left, send_timeout=self._smtp_timeout, lease=self._lease
            ):
                # It waited too long for a sender: another replica may take it over
                # while we send. Hand it back untried instead.
                outcomes[index] = Outcome(email, released=True)
                continue
            try:
                messages.append(self.compose(email, now, opened))
            except ComposeError as exc:
                outcomes[index] = Outcome(email, str(exc), permanent=True)
                continue
            sent_as.append(index)
        reported: set[int] = set()
        with contextlib.ExitStack() as spans:
            # Each email's send continues the trace of the event that asked for it.
            span_of = {index: spans.enter_context(_send_span(run[index][0])) for index in sent_as}

            def settle(position: int, error: DeliveryError | None) -> Outcome:
                index = sent_as[position]
                email = run[index][0]
                if error is None:
                    outcome = Outcome(email)
                elif not error.tried:
                    outcome = Outcome(email, released=True)
                else:
                    outcome = Outcome(
                        email,
                        error.reason,
                        permanent=error.permanent,
                        relay_wide=error.relay_wide,
                    )
                outcomes[index] = outcome
                span_of[index].set_attribute("email.outcome", _outcome_name(outcome))
                return outcome

            def answered(position: int, error: DeliveryError | None) -> None:
                outcome = settle(position, error)
                if report is not None:
                    reported.add(sent_as[position])
                    report(outcome)

            errors = await self._mailer(messages, answered if report is not None else None)
            for position, error in enumerate(errors):
                if sent_as[position] not in reported:
                    settle(position, error)
        in_order = [outcomes[index] for index in range(len(run))]
        if report is not None:
            for index, outcome in enumerate(in_order):
                if index not in reported:
                    report(outcome)
        return in_order

    def compose(
        self, email: OutgoingEmail, now: datetime, opened: str | None = None
    ) -> MailMessage:
        """Open the token (unless ``opened`` is it) and render the message. The token
        exists in memory only from claim to send, never in a log or the database."""
        if email.template not in TEMPLATES:
            raise ComposeError(f"unknown template {email.template!r}")
        kind = link_kind(email.template)
        if kind is not None and email.sealed_token is None:
            raise ComposeError("the email has no token to send")
        if link_expired(email.link_expires_at, now):
            raise ComposeError("the link expired before it could be sent")
        if kind == "set_password":
            url = set_password_url(self._settings.public_base_url, opened or self._open(email))
        elif kind == "invitation":
            url = invitation_url(self._settings.app_base_url, opened or self._open(email))
        elif kind == "confirm_email":
            url = confirm_email_url(self._settings.app_base_url, opened or self._open(email))
        elif kind == "change_email":
            url = change_email_url(self._settings.app_base_url, opened or self._open(email))
        elif kind == "link_address":
            url = link_address_url(self._settings.app_base_url, opened or self._open(email))
        elif kind == "door":
            via = email.details.get("via", "registration_link")
            url = door_url(self._settings.app_base_url, via, opened or self._open(email))
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
            "via": email.details.get("via", "registration_link"),
            "new_email": email.details.get("new_email", ""),
        }
        try:
            rendered = render(email.template, context)
        except Exception as exc:
            raise ComposeError(f"cannot render {email.template!r}: {exc!r}") from exc
        try:
            return build_message(
                rendered, sender=self._settings.mail_from, to=email.to, email_id=email.id
            )
        except ValueError as exc:
            raise ComposeError(str(exc)) from None

    def _open(self, email: OutgoingEmail) -> str:
        if self._seal_key is None:
            raise ComposeError("no sealing key configured (PRODIGY_SEAL_PRIVATE_KEY_PATH)")
        assert email.sealed_token is not None
        try:
            return unseal(self._seal_key, email.sealed_token)
        except Exception as exc:
            # Never log the sealed value; the type of error is enough.
            raise ComposeError(f"cannot open the sealed token ({type(exc).__name__})") from None

    # ---- claiming --------------------------------------------------------

    async def _serve(self, conn: AsyncConnection) -> None:
        window = self._settings.send_batch_size
        low = self._low
        while True:
            self._wakeup.clear()
            waiting = self._queue.qsize()
            free = window - waiting - self._busy
            claimed = 0
            # Claim once the senders are about to run dry, as many as the window allows:
            # few large claims rather than one query per email.
            if free > 0 and waiting < low:
                claimed = await self._claim(conn, free)
                if claimed == free:
                    continue  # there may be more due right now
            timeout = self._settings.delivery_poll_interval_s
            if self._queue.empty() and self._busy == 0:
                due_in = await service.seconds_until_next_due(self._engine)
                if due_in is not None:
                    timeout = max(min(due_in, timeout), MIN_WAIT_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def _claim(self, conn: AsyncConnection, limit: int) -> int:
        claiming = asyncio.ensure_future(self._claim_and_open(conn, limit))
        try:
            claimed = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Stopping: the claim may have committed already. What it took joins the
            # queue, which the stop hands back at once (instead of leaving leases).
            done, _ = await asyncio.wait([claiming], timeout=SHUTDOWN_GRACE_S)
            if done and not claiming.cancelled() and claiming.exception() is None:
                for item in claiming.result():
                    self._queue.put_nowait(item)
            raise
        for item in claimed:
            self._queue.put_nowait(item)
        return len(claimed)

    async def _claim_and_open(self, conn: AsyncConnection, limit: int) -> list[_Claimed]:
        holder = self._holder
        if holder is None:
            raise ConnectionError("the worker's database session is gone")
        claimed = await service.claim_due(
            conn, limit=limit, lease=self._lease, holder=holder, grace=self._grace
        )
        lease_ends = time.monotonic() + self._lease.total_seconds()
        # Opening the tokens is a good part of an email's CPU (all of it with a
        # legacy RSA key): open the whole batch on a worker thread while the
        # senders go on with the last one.
        opened = await asyncio.to_thread(self._open_all, claimed) if claimed else []
        return [
            _Claimed(email, lease_ends, token, holder)
            for email, token in zip(claimed, opened, strict=True)
        ]

    def _open_all(self, claimed: list[OutgoingEmail]) -> list[str | None]:
        """Each email's token, or None (no token; or it cannot be opened, which
        ``compose`` finds out again and reports)."""
        tokens: list[str | None] = []
        for email in claimed:
            token = None
            if email.sealed_token is not None and self._seal_key is not None:
                with contextlib.suppress(Exception):
                    token = unseal(self._seal_key, email.sealed_token)
            tokens.append(token)
        return tokens

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[AsyncConnection]:
        """A session of our own for as long as the worker serves: it holds the lock
        of the worker's id (its liveness, as other workers see it), hears of new
        emails (LISTEN), and makes every claim."""
        async with self._engine.connect() as conn:
            try:
                worker_id = await self._take_worker_id(conn)
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.add_listener(EMAILS_CHANNEL, self._on_notify)
                driver.add_termination_listener(self._on_session_lost)
                self._holder = worker_id
                log.info("delivery worker serving", worker_id=worker_id)
                try:
                    yield conn
                finally:
                    self._holder = None
                    with contextlib.suppress(Exception):
                        driver.remove_termination_listener(self._on_session_lost)
                        await driver.remove_listener(EMAILS_CHANNEL, self._on_notify)
            finally:
                # The lock must end with the session: back in the pool, the connection
                # would keep it, and our leases would look alive until they expire.
                with contextlib.suppress(Exception):
                    await conn.invalidate()

    async def _take_worker_id(self, conn: AsyncConnection) -> int:
        while True:
            worker_id = secrets.randbelow(MAX_WORKER_ID) + 1
            taken = await store_delivery.hold_worker_id(conn, worker_id)
            await conn.commit()
            if taken:
                return worker_id

    def _on_session_lost(self, *_: object) -> None:
        # Our lock is gone: other workers may take our leases over from now on, so
        # nothing more is sent on them (see ``_sender``); a new session, a new id.
        if self._holder is not None:
            log.warning("delivery worker lost its database session", worker_id=self._holder)
        self._holder = None
        self._wakeup.set()

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    # ---- sending ---------------------------------------------------------

    async def _sender(self) -> None:
        # The flag, not only the cancel, ends a sender: on Python 3.11 a cancel that
        # lands as a reply arrives can be swallowed by ``asyncio.wait_for`` (which
        # aiosmtplib uses while a session opens).
        while not self._stopping:
            # A run of what is waiting (up to smtp_run_size) goes out on one session.
            items = [await self._queue.get()]
            while len(items) < self._settings.smtp_run_size and not self._queue.empty():
                items.append(self._queue.get_nowait())
            items = self._still_ours(items)
            if not items:
                continue
            self._busy += len(items)
            self._idle.clear()
            now = time.monotonic()
            try:
                run = [(i.email, timedelta(seconds=i.lease_ends - now), i.opened) for i in items]
                await self.attempt_run(run, self._report)
            except Exception as exc:
                # The emails keep their lease and are tried again once it runs out.
                log.error(
                    "email delivery crashed",
                    emails=[str(i.email.id) for i in items],
                    error=repr(exc),
                )
            finally:
                self._busy -= len(items)
                if not self._busy:
                    self._idle.set()
            if self._queue.qsize() < self._low:
                self._wakeup.set()  # time to claim more

    def _still_ours(self, items: list[_Claimed]) -> list[_Claimed]:
        """Those claimed under the worker id we still hold. The others are dropped
        unsent: once our lock went, another worker may have taken them over."""
        ours = [i for i in items if i.holder is not None and i.holder == self._holder]
        if len(ours) < len(items):
            log.warning(
                "claimed emails dropped: the worker lost its lock, another takes them over",
                emails=[str(i.email.id) for i in items if i not in ours],
            )
        return ours

    def _report(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._settled.clear()
        self._outcome_ready.set()

    # ---- recording -------------------------------------------------------

    async def _recorder(self) -> None:
        """Record outcomes as they come: whatever piled up while the last transaction
        ran is the next one (a group commit). No waiting for more: an email the relay
        took is sent again by a crash until its outcome is committed."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            batch, self._outcomes = self._outcomes, []
            if batch:
                await self._record(batch)
            if not self._outcomes:
                self._settled.set()

    async def _record(self, batch: list[Outcome]) -> None:
        # Sent emails must be recorded (or their lease runs out and they go again):
        # through a database outage, keep trying.
        backoff = 0.1
        while True:
            try:
                by_status = await service.record(self._engine, batch, self._policy)
                break
            except Exception as exc:
                log.warning("recording email outcomes failed", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        if any(o.relay_wide and not o.permanent for o in batch):
            self._relay_failing = True
        elif self._relay_failing and by_status.get("sent"):
            await self._relay_is_back()
        for status, outcomes in by_status.items():
            if outcomes and self._metrics is not None:
                self._metrics.emails.labels(self._settings.service_name, status).inc(len(outcomes))
        for outcome in by_status.get("failed", []):
            log.warning(
                "email failed",
                email_id=str(outcome.email.id),
                template=outcome.email.template,
                attempts=outcome.email.attempts,
                permanent=outcome.permanent,
                error=outcome.error,
            )
        retrying = by_status.get("retrying", [])
        log.info(
            "emails recorded",
            sent=len(by_status.get("sent", [])),
            retrying=len(retrying),
            failed=len(by_status.get("failed", [])),
            released=sum(1 for o in batch if o.released),
            **({"error": retrying[0].error} if retrying else {}),
        )

    async def _relay_is_back(self) -> None:
        """The relay took an email after refusing (or missing) them: the emails waiting
        out their backoff are due now rather than up to ``send_backoff_max_s`` later.
        Each gets one attempt from it; their backoff goes on if that fails too."""
        try:
            async with self._engine.begin() as conn:
                due = await store_delivery.retry_waiting_now(conn)
        except Exception as exc:  # they keep their schedule: late, not lost
            log.warning("could not bring retries forward", error=repr(exc))
            return
        self._relay_failing = False
        log.info("the relay takes emails again: retries due now", emails=due)

    # ---- stopping --------------------------------------------------------

    async def _drain(self, senders: list[asyncio.Task[None]], recorder: asyncio.Task[None]) -> None:
        """A clean stop leaves no lease to wait out: what is still queued goes back
        untried, sends in flight may finish briefly, and every outcome is recorded.
        Every wait is bounded: stopping never hangs on a sender or the database."""
        if self._stopping:
            return  # drained already (while the worker's lock was held)
        self._stopping = True
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while not self._queue.empty():
            self._report(Outcome(self._queue.get_nowait().email, released=True))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_S):
                await self._idle.wait()
        for task in senders:
            task.cancel()
        await asyncio.wait(senders, timeout=1.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(deadline - time.monotonic(), 1.0)):
                await self._settled.wait()
        recorder.cancel()
        await asyncio.wait([recorder], timeout=1.0)
        if self._outcomes:
            log.warning("stopped before recording every outcome", left=len(self._outcomes))


def _send_span(email: OutgoingEmail) -> contextlib.AbstractContextManager[Span]:
    carrier = trace_carrier(email.details)
    if not carrier:
        return contextlib.nullcontext(INVALID_SPAN)
    return continue_trace(
        "send email",
        carrier,
        kind=SpanKind.CLIENT,
        attributes={"email.template": email.template, "email.id": str(email.id)},
    )


def _outcome_name(outcome: Outcome) -> str:
    if outcome.released:
        return "released"
    if outcome.error is None:
        return "sent"
    return "refused" if outcome.permanent else "failed"


def _settings(runtime: Runtime) -> Settings:
    settings = runtime.settings
    assert isinstance(settings, Settings), "notifications runs with its own Settings"
    return settings


def _seal_key(settings: Settings) -> SealKey | None:
    if settings.seal_private_key_path is None:
        log.error("no PRODIGY_SEAL_PRIVATE_KEY_PATH: emails with a link will fail")
        return None
    return load_seal_key(settings.seal_private_key_path)


async def deliver(runtime: Runtime) -> None:
    """Background worker of the notifications service: delivers the email queue forever."""
    settings = _settings(runtime)
    mailer = smtp_mailer(settings)

    async def relay_answers() -> bool:
        try:
            session = await SmtpSession.open(settings)
        except Exception:
            return False
        await session.close()
        return True

    delivery = Delivery(
        runtime.engine,
        settings,
        mailer,
        _seal_key(settings),
        runtime.metrics,
        relay_answers=relay_answers,
    )
    try:
        await delivery.run()
    finally:
        await mailer.close()
