"""The delivery worker on a real PostgreSQL and a real SMTP server (the aiosmtpd capture):
batched queueing, reused sessions, retries and the dead letter, lease fences, release
of untried emails, and a clean stop in the middle of a burst."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope, wrap
from prodigy_users.contracts.identity import PasswordLink, PasswordLinkIssued, PasswordLinksIssued
from prodigy_users.contracts.membership import DepartmentCreated, WelcomeRequested
from prodigy_users.contracts.notifications import EmailDeadLettered, EmailFailed, EmailSent
from prodigy_users.contracts.topics import IDENTITY_CREDENTIALS, MEMBERSHIP_MAIL, topic_of
from prodigy_users.notifications import service
from prodigy_users.notifications.app import spec
from prodigy_users.notifications.delivery import Delivery
from prodigy_users.notifications.domain import Outcome, RetryPolicy
from prodigy_users.notifications.mailer import SmtpPool
from prodigy_users.notifications.settings import Settings
from prodigy_users.notifications.tables import emails
from prodigy_users.runtime.keys import seal
from prodigy_users.runtime.messaging_tables import outbox
from prodigy_users.stack.mailcapture import MailCapture
from tests.integration.consumers import Record, consumer_of
from tests.support import wait_for

pytestmark = pytest.mark.timeout(180)


def settings_for(capture: MailCapture, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_port": capture.smtp_port,
        "send_backoff_base_s": 0.05,
        "send_backoff_max_s": 0.2,
        "send_max_attempts": 3,
        "send_concurrency": 4,
        "send_batch_size": 16,
        "delivery_poll_interval_s": 0.2,
        "department_name_wait_s": 0,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def running() -> Iterator[list[asyncio.Task[None]]]:
    """Tasks a test starts; cancelled (a clean stop) at its end if still running."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()


async def start(delivery: Delivery, running: list[asyncio.Task[None]]) -> asyncio.Task[None]:
    task = asyncio.create_task(delivery.run())
    running.append(task)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    """Stop the worker as the service's shutdown does; it must not take long."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=15)
    assert done, "the delivery worker did not stop"


def sealed(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return seal(public, f"token-{uuid.uuid4().hex}")


def credentials(key: rsa.RSAPrivateKey, dept: uuid.UUID, email: str) -> PasswordLinkIssued:
    return PasswordLinkIssued(
        account_id=uuid.uuid4(),
        email=email,
        name="Burst Person",
        purpose="welcome",
        sealed_token=sealed(key),
        expires_at=datetime.now(UTC) + timedelta(days=1),
        department_id=dept,
    )


def addresses(n: int, prefix: str = "p") -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{i:04d}-{tag}@example.org" for i in range(n)]


async def queue(
    engine: AsyncEngine, key: rsa.RSAPrivateKey, dept: uuid.UUID, to: list[str]
) -> None:
    """Queue credentials emails the way the consumer's batch path does."""
    rows = []
    for email in to:
        payload = credentials(key, dept, email)
        envelope = wrap(payload, producer="identity", key=str(payload.account_id))
        raw = RawEnvelope.model_validate_json(envelope.encode())
        rows.append(service.password_link_email(raw, payload))
    async with engine.begin() as conn:
        await service.queue_many(conn, rows, name_wait=timedelta(0))


async def statuses(engine: AsyncEngine, dept: uuid.UUID) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(emails).where(emails.c.department_id == dept))
        return {r.recipient: r._asdict() for r in rows}


async def outbox_events(engine: AsyncEngine, email_ids: set[uuid.UUID]) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(outbox).order_by(outbox.c.id))
        return [
            {"topic": r.topic, "key": r.key, **r.envelope}
            for r in rows
            if uuid.UUID(r.envelope["data"].get("email_id", str(uuid.UUID(int=0)))) in email_ids
        ]


async def test_a_batch_of_events_queues_each_email_once(
    engine: AsyncEngine, key: rsa.RSAPrivateKey
) -> None:
    settings = Settings(department_name_wait_s=60)
    consumer = consumer_of(spec(settings), engine)
    known, unknown = uuid.uuid4(), uuid.uuid4()
    await consumer.process(
        topic_of(DepartmentCreated),
        wrap(DepartmentCreated(department_id=known, name="Known"), producer="m", key="k").encode(),
        None,
        consumer.by_type(),
    )

    payloads: list[Any] = [credentials(key, known, e) for e in addresses(3)]
    payloads.append(
        WelcomeRequested(department_id=unknown, account_id=uuid.uuid4(), email="w@x.org", name="W")
    )
    bodies = [wrap(p, producer="identity", key="k").encode() for p in payloads]
    batch = [(IDENTITY_CREDENTIALS, Record(b)) for b in bodies[:3]]
    batch += [(MEMBERSHIP_MAIL, Record(bodies[3])), (IDENTITY_CREDENTIALS, Record(bodies[0]))]
    await consumer.process_batch(batch, consumer.by_type())
    await consumer.process_batch(batch, consumer.by_type())  # the whole batch redelivered

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    emails.c.recipient,
                    emails.c.department_id,
                    (emails.c.next_attempt_at <= sa.func.now()).label("due"),
                ).where(emails.c.department_id.in_([known, unknown]))
            )
        ).all()
    assert Counter(r.recipient for r in rows) == Counter(
        [p.email for p in payloads]  # one each, despite the repeats
    )
    for row in rows:
        # Known department: due at once; unknown: waits for its name.
        assert row.due is (row.department_id == known), row


async def test_a_batch_of_links_in_one_event_queues_one_email_per_link_once(
    engine: AsyncEngine, key: rsa.RSAPrivateKey
) -> None:
    """A bulk upload's credentials come as one ``PasswordLinksIssued`` per batch."""
    settings = Settings(department_name_wait_s=60)
    consumer = consumer_of(spec(settings), engine)
    dept = uuid.uuid4()
    links = [
        PasswordLink(account_id=uuid.uuid4(), email=e, name=f"P {e}", sealed_token=sealed(key))
        for e in addresses(3, "batch")
    ]
    payload = PasswordLinksIssued(
        request_id=uuid.uuid4(),
        department_id=dept,
        purpose="welcome",
        expires_at=datetime.now(UTC) + timedelta(days=3),
        links=links,
    )
    envelope = wrap(payload, producer="identity", key=str(payload.request_id))
    body = envelope.encode()

    # Alone (the careful path), then twice in one fetch (the batch path): once each.
    await consumer.process(IDENTITY_CREDENTIALS, body, None, consumer.by_type())
    batch = [(IDENTITY_CREDENTIALS, Record(body)), (IDENTITY_CREDENTIALS, Record(body))]
    await consumer.process_batch(batch, consumer.by_type())
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(emails).where(emails.c.department_id == dept).order_by(emails.c.recipient)
            )
        ).all()
    assert [r.recipient for r in rows] == sorted(link.email for link in links)
    by_account = {link.account_id: link for link in links}
    for row in rows:
        link = by_account[row.account_id]
        assert (row.recipient, row.recipient_name) == (link.email, link.name)
        assert row.sealed_token == link.sealed_token and row.template == "welcome"
        # Each answers the batch's event (EmailSent says so to subscribers).
        assert row.source_event_id == envelope.event_id


async def test_a_burst_goes_out_over_a_few_reused_sessions(
    engine: AsyncEngine, key: rsa.RSAPrivateKey, capture: MailCapture, running: list[Any]
) -> None:
    settings = settings_for(capture, smtp_messages_per_connection=50)
    pool = SmtpPool(settings)
    dept = uuid.uuid4()
    to = addresses(120)
    await queue(engine, key, dept, to)
    task = await start(Delivery(engine, settings, pool, key), running)
    try:
        await capture.wait_for(lambda m: m["to"][0] in to, count=len(to), within=60)
    finally:
        await stop(task)
        await pool.close()
    mails = [m for m in capture.messages if m["to"][0] in to]
    assert Counter(m["to"][0] for m in mails) == Counter(to)
    # Sessions are reused, each renewed after 50 messages (a few other tests' emails
    # may go out here too).
    renewals = len(capture.messages) // 50
    assert renewals <= capture.connections <= settings.send_concurrency + renewals
    rows = await statuses(engine, dept)
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert all(r["attempts"] == 1 and r["sealed_token"] is None for r in rows.values())
    events = await outbox_events(engine, {r["id"] for r in rows.values()})
    assert Counter(e["type"] for e in events) == {EmailSent.TYPE: len(to)}
    assert {e["key"] for e in events} == {str(dept)}


async def test_refusals_retry_with_backoff_then_fail_into_the_dead_letter_topic(
    engine: AsyncEngine, key: rsa.RSAPrivateKey, capture: MailCapture, running: list[Any]
) -> None:
    settings = settings_for(capture)
    pool = SmtpPool(settings)
    dept = uuid.uuid4()
    bounced, greylisted, fine = addresses(3, "r")
    capture.reject(bounced)
    capture.reject(greylisted, "450 4.2.0 Mailbox busy")
    await queue(engine, key, dept, [bounced, greylisted, fine])
    task = await start(Delivery(engine, settings, pool, key), running)
    try:

        async def settled() -> dict[str, dict[str, Any]] | None:
            rows = await statuses(engine, dept)
            done = all(r["status"] in ("sent", "failed") for r in rows.values())
            return rows if done else None

        rows = await wait_for(settled, timeout=60, what="every email settled")
    finally:
        await stop(task)
        await pool.close()
    assert rows[fine]["status"] == "sent"
    assert rows[bounced]["status"] == "failed" and rows[bounced]["attempts"] == 1
    assert rows[greylisted]["status"] == "failed"
    assert rows[greylisted]["attempts"] == settings.send_max_attempts
    assert "450" in rows[greylisted]["last_error"] and "550" in rows[bounced]["last_error"]
    ours = (bounced, greylisted, fine)
    assert [m["to"] for m in capture.messages if m["to"][0] in ours] == [[fine]]

    events = await outbox_events(engine, {r["id"] for r in rows.values()})
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    letters = {e["data"]["to"]: e for e in by_type[EmailDeadLettered.TYPE]}
    assert set(letters) == {bounced, greylisted}
    assert {e["topic"] for e in letters.values()} == {"notifications.email_dead_letters.v1"}
    assert letters[bounced]["data"]["permanent"] is True
    assert letters[greylisted]["data"]["permanent"] is False
    assert letters[greylisted]["data"]["attempts"] == settings.send_max_attempts
    assert {e["data"]["to"] for e in by_type[EmailFailed.TYPE]} == {bounced, greylisted}
    # Both events of a failure answer the event that queued the email.
    for event in letters.values():
        assert event["causation_id"] == event["data"]["source_event_id"]


async def test_outcomes_are_fenced_by_the_attempt_and_untried_emails_go_back(
    engine: AsyncEngine, key: rsa.RSAPrivateKey
) -> None:
    dept = uuid.uuid4()
    first, second = addresses(2, "f")
    await queue(engine, key, dept, [first, second])
    claimed = await service.claim_due(engine, limit=100, lease=timedelta(seconds=60))
    mine = {e.to: e for e in claimed if e.department_id == dept}
    assert set(mine) == {first, second}
    policy = RetryPolicy(3, 1.0, 10.0)

    # An outcome for an attempt that is no longer current (the lease was lost and
    # the email claimed again) changes nothing.
    stale = Outcome(dataclasses.replace(mine[first], attempts=7))
    recorded = await service.record(engine, [stale], policy)
    assert recorded == {"sent": [], "retrying": [], "failed": []}
    assert (await statuses(engine, dept))[first]["status"] == "sending"

    result = await service.record(
        engine, [Outcome(mine[first], released=True), Outcome(mine[second], "451 later")], policy
    )
    assert [o.email.to for o in result["retrying"]] == [second]
    rows = await statuses(engine, dept)
    assert rows[first]["status"] == "pending" and rows[first]["attempts"] == 0
    assert rows[second]["status"] == "retrying" and rows[second]["attempts"] == 1
    assert rows[second]["last_error"] == "451 later"
    wait = rows[second]["next_attempt_at"] - rows[second]["last_attempt_at"]
    assert timedelta(seconds=0.5) < wait < timedelta(seconds=5), "the policy's first backoff"


async def test_a_stop_mid_burst_leaves_nothing_claimed_and_nothing_sent_twice(
    engine: AsyncEngine, key: rsa.RSAPrivateKey, capture: MailCapture, running: list[Any]
) -> None:
    settings = settings_for(capture, send_batch_size=40)
    dept = uuid.uuid4()
    to = addresses(300, "s")
    await queue(engine, key, dept, to)

    pool = SmtpPool(settings)
    task = await start(Delivery(engine, settings, pool, key), running)
    await capture.wait_for(lambda m: m["to"][0] in to, count=30, within=60)
    await stop(task)  # mid-burst: the queued emails go back, sends in flight finish
    await pool.close()
    rows = await statuses(engine, dept)
    assert not [r for r in rows.values() if r["status"] == "sending"], "no lease to wait out"
    sent = {t for t, r in rows.items() if r["status"] == "sent"}
    assert sent == {m["to"][0] for m in capture.messages if m["to"][0] in to}
    assert len(sent) < len(to), "stopped before the end"

    pool = SmtpPool(settings)
    task = await start(Delivery(engine, settings, pool, key), running)
    try:
        await capture.wait_for(lambda m: m["to"][0] in to, count=len(to), within=60)
    finally:
        await stop(task)
        await pool.close()
    mails = [m for m in capture.messages if m["to"][0] in to]
    assert Counter(m["to"][0] for m in mails) == Counter(to), "each exactly once"


async def test_a_relay_that_dropped_an_idle_session_costs_no_attempt(
    engine: AsyncEngine, key: rsa.RSAPrivateKey, capture: MailCapture
) -> None:
    settings = settings_for(capture)
    pool = SmtpPool(settings)
    try:
        delivery = Delivery(engine, settings, pool, key)
        dept = uuid.uuid4()
        first, second = addresses(2, "i")
        await queue(engine, key, dept, [first, second])
        claimed = [
            e
            for e in await service.claim_due(engine, limit=100, lease=timedelta(seconds=60))
            if e.department_id == dept
        ]
        outcome = await delivery.attempt(claimed[0], timedelta(seconds=60))
        assert outcome.error is None
        for session in list(capture._sessions):  # the relay hangs up on the idle session
            session.close()
        outcome = await delivery.attempt(claimed[1], timedelta(seconds=60))
        assert outcome.error is None, outcome
        assert sorted(m["to"][0] for m in capture.messages) == sorted([first, second])
        # An email that waited for a sender until its lease nearly ran out is not tried.
        late = await delivery.attempt(claimed[0], timedelta(seconds=1))
        assert late.released
    finally:
        await pool.close()
