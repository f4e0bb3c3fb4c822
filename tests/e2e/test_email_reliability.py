"""Reliable email on the real stack: a relay outage during a burst, permanent and
temporary refusals, the dead-letter topic, restarts mid-burst, and who reads the log.

The mail capture is the relay: these tests stop it, start it again, and make it
refuse chosen recipients (``MailCapture.reject``), so they need the embedded stack.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.notifications import EmailDeadLettered, EmailFailed
from prodigy_users.contracts.topics import (
    IDENTITY_CREDENTIALS,
    NOTIFICATION_DEAD_LETTERS,
    NOTIFICATION_EVENTS,
)
from prodigy_users.runtime.keys import seal
from tests.support import Admin, Api, Keys, added_person, envelope_of, random_email, wait_for

pytestmark = pytest.mark.e2e

BURST = 20


def log_url(api: Api, department_id: str) -> str:
    return api.url("notifications", f"/v1/notifications/departments/{department_id}/emails")


async def email_log(api: Api, admin: Admin, **params: str | list[str]) -> list[dict[str, Any]]:
    """Every entry of the department's email log (all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": "200", **params}
        if cursor:
            query["cursor"] = cursor
        r = await api.http.get(
            log_url(api, admin.department_id), params=query, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def wait_log(
    api: Api,
    admin: Admin,
    check: Callable[[dict[str, dict[str, Any]]], bool],
    *,
    what: str,
    timeout: float = 60.0,
) -> dict[str, dict[str, Any]]:
    """Wait until the log, as {recipient: entry}, passes ``check``."""

    async def probe() -> dict[str, dict[str, Any]] | None:
        by_to = {e["to"]: e for e in await email_log(api, admin)}
        return by_to if check(by_to) else None

    return await wait_for(probe, timeout=timeout, interval=0.2, what=what)


def sent_to(*people: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """A log check: the emails to ``people`` are all sent."""
    return lambda by_to: all(by_to.get(p, {}).get("status") == "sent" for p in people)


async def add_members(api: Api, admin: Admin, emails: list[str]) -> None:
    """Add them all at once (a burst); each gets a credentials email."""
    answers = await asyncio.gather(*(api.add_member(admin, e) for e in emails))
    for r in answers:
        assert r.status_code in (201, 202), r.text


async def records(
    bootstrap: str, topic: str, match: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> list[tuple[Any, dict[str, Any]]]:
    """Read ``topic`` from the beginning (every partition) until a record's envelope
    matches; every matching (record, envelope) read by then."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[tuple[Any, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while not found and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    envelope = envelope_of(record.value)
                    if envelope is not None and match(envelope):
                        found.append((record, envelope))
        return found
    finally:
        await consumer.stop()


async def test_relay_down_during_a_burst_every_email_goes_out_once_it_is_back(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    people = [random_email("outage") for _ in range(BURST)]
    seen_retrying: set[str] = set()
    await controllable.stop_mail()
    try:
        await add_members(api, admin, people)

        async def all_retrying() -> set[str] | None:
            for e in await email_log(api, admin, status="retrying"):
                assert e["attempts"] >= 1 and e["last_error"], e
                assert e["next_attempt_at"] is not None, e
                seen_retrying.add(e["to"])
            return seen_retrying if seen_retrying >= set(people) else None

        await wait_for(all_retrying, timeout=60, interval=0.2, what="every email retrying")
    finally:
        await controllable.start_mail()

    for person in people:
        await api.wait_mail(person, timeout=60)
    log = await wait_log(
        api,
        admin,
        sent_to(*people),
        what="every email sent",
    )
    # Sent is final: nothing more will go out, so these counts are the last word.
    mails = [m for m in await api.mails() if m["to"][0] in people]
    assert Counter(m["to"][0] for m in mails) == Counter(people)
    assert len({m["message_id"] for m in mails}) == BURST
    for person in people:
        entry = log[person]
        assert entry["attempts"] >= 2, entry  # at least one failed while the relay was away
        assert entry["sent_at"] is not None and entry["last_error"] is None, entry


async def test_a_permanent_refusal_fails_at_once_and_goes_to_the_dead_letter_topic(
    api: Api, controllable: Any, bootstrap: str
) -> None:
    admin = await api.create_department()
    doomed = random_email("bounce")
    controllable.mail.reject(doomed)  # 550 5.1.1 at RCPT TO
    await add_members(api, admin, [doomed])

    log = await wait_log(
        api, admin, lambda by_to: by_to.get(doomed, {}).get("status") == "failed", what="failed"
    )
    entry = log[doomed]
    assert entry["attempts"] == 1, "a permanent refusal does not waste the other attempts"
    assert "550" in entry["last_error"], entry
    assert entry["sent_at"] is None and entry["next_attempt_at"] is None
    failed = await email_log(api, admin, status="failed")
    assert [e["to"] for e in failed] == [doomed]

    letters = await records(
        bootstrap,
        NOTIFICATION_DEAD_LETTERS.name,
        lambda env: env["type"] == EmailDeadLettered.TYPE and env["data"]["to"] == doomed,
    )
    assert len(letters) == 1, letters
    record, envelope = letters[0]
    headers = dict(record.headers)
    assert headers["type"] == EmailDeadLettered.TYPE.encode()
    assert record.key == admin.department_id.encode()
    letter = EmailDeadLettered.model_validate(envelope["data"])
    assert letter.email_id == uuid.UUID(entry["id"])
    assert letter.permanent is True and letter.attempts == 1
    assert "550" in letter.reason and letter.template == "welcome"
    assert str(letter.department_id) == admin.department_id
    assert "token" not in json.dumps(envelope["data"]).lower()

    # Subscribers hear of it as a failed email, too.
    [(_, failed_event)] = await records(
        bootstrap,
        NOTIFICATION_EVENTS.name,
        lambda env: env["type"] == EmailFailed.TYPE and env["data"]["to"] == doomed,
    )
    assert failed_event["data"]["email_id"] == entry["id"]
    assert await api.mails(doomed) == []


async def test_a_temporary_refusal_is_retried_until_the_relay_takes_it(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    greylisted = random_email("greylisted")
    controllable.mail.reject(greylisted, "451 4.7.1 Greylisted, try again later")
    try:
        await add_members(api, admin, [greylisted])
        log = await wait_log(
            api,
            admin,
            lambda by_to: by_to.get(greylisted, {}).get("attempts", 0) >= 2,
            what="two refused attempts",
        )
        assert log[greylisted]["status"] in ("retrying", "sending"), log[greylisted]
        assert "451" in log[greylisted]["last_error"]
    finally:
        controllable.mail.accept(greylisted)

    [mail] = await api.wait_mail(greylisted)
    log = await wait_log(
        api, admin, lambda by_to: by_to[greylisted]["status"] == "sent", what="sent in the end"
    )
    assert log[greylisted]["attempts"] >= 3
    assert mail["message_id"].startswith(f"<{log[greylisted]['id']}@")


def credentials_event(keys: Keys, department_id: str, email: str) -> bytes:
    token = seal((keys.directory / "seal.pub.pem").read_bytes(), f"tok-{uuid.uuid4().hex}")
    payload = PasswordLinkIssued(
        account_id=uuid.uuid4(),
        email=email,
        name="Burst Person",
        purpose="welcome",
        sealed_token=token,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        department_id=uuid.UUID(department_id),
    )
    return wrap(payload, producer="identity", key=str(payload.account_id)).encode()


async def publish(bootstrap: str, bodies: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for body in bodies:
            key = json.loads(body)["key"].encode()
            await producer.send(IDENTITY_CREDENTIALS.name, body, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_restart_mid_burst_and_redelivered_events_send_each_email_once(
    api: Api, keys: Keys, bootstrap: str, controllable: Any
) -> None:
    admin = await api.create_department()
    people = [random_email("restart") for _ in range(150)]
    bodies = [credentials_event(keys, admin.department_id, p) for p in people]
    await publish(bootstrap, bodies)

    async def some_out() -> bool:
        return len([m for m in await api.mails() if m["to"][0] in people]) >= 10

    await wait_for(some_out, timeout=60, what="the burst under way")
    await controllable.stop_service("notifications")  # SIGTERM, mid-burst
    try:
        await publish(bootstrap, bodies[:20])  # redelivered while it is down
    finally:
        await controllable.start_service("notifications")
    await publish(bootstrap, bodies[-20:])  # and again once it is back
    fence = random_email("fence")
    await publish(bootstrap, [credentials_event(keys, admin.department_id, fence)])

    await api.wait_mail(fence, timeout=60)
    await wait_log(
        api,
        admin,
        sent_to(*people),
        what="every email of the burst sent",
    )
    mails = [m for m in await api.mails() if m["to"][0] in people]
    assert Counter(m["to"][0] for m in mails) == Counter(people), "each exactly once"
    assert len(await email_log(api, admin)) == len(people) + 2  # + the admin's + the fence


async def test_the_log_pages_newest_first_and_filters_by_status(api: Api) -> None:
    admin = await api.create_department()
    people = [random_email("paged") for _ in range(5)]
    for person in people:  # one by one, each queued before the next: a known order
        await add_members(api, admin, [person])
        await wait_log(api, admin, sent_to(person), what=f"the email to {person}")

    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await api.http.get(
            log_url(api, admin.department_id), params=params, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        pages.append(r.json()["items"])
        cursor = r.json().get("next_cursor")
        if not cursor:
            break
    entries = [e for page in pages for e in page]
    assert [len(p) for p in pages] == [2, 2, 2]  # five added + the admin's own email
    assert len({e["id"] for e in entries}) == 6
    assert [e["to"] for e in entries[:5]] == list(reversed(people)), "newest first"
    created = [e["created_at"] for e in entries]
    assert created == sorted(created, reverse=True)
    for e in entries:
        assert e["template"] == "welcome" and e["attempts"] == 1
        assert e["sent_at"] and e["last_attempt_at"] and e["last_error"] is None
        assert "token" not in json.dumps(e).lower()

    sent = await email_log(api, admin, status=["retrying", "sent"])
    assert len(sent) == 6
    assert await email_log(api, admin, status="failed,pending") == []

    for params, field in (({"status": "bounced"}, "status"), ({"cursor": "garbage!"}, "cursor")):
        r = await api.http.get(
            log_url(api, admin.department_id), params=params, headers=admin.headers
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_only_admins_of_the_department_read_its_log(api: Api) -> None:
    admin = await api.create_department()
    other = await api.create_department()
    officer = await added_person(api, admin, role="officer")
    member = await added_person(api, admin, role="member")
    url = log_url(api, admin.department_id)

    async def admin_reads() -> bool:
        r = await api.http.get(url, headers=admin.headers)
        return r.status_code == 200

    await wait_for(admin_reads, what="the admin reading the log")
    for who, headers in (
        ("officer", officer.headers),
        ("member", member.headers),
        ("another department's admin", other.headers),
    ):
        r = await api.http.get(url, headers=headers)
        assert r.status_code == 403, (who, r.text)
        assert r.json()["type"].endswith("/forbidden"), r.text
    r = await api.http.get(url)
    assert r.status_code == 401, r.text
    r = await api.http.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401, r.text
    # Their own department's log is theirs, and holds nothing of this one.

    async def other_reads() -> list[dict[str, Any]] | None:
        r = await api.http.get(log_url(api, other.department_id), headers=other.headers)
        return r.json()["items"] if r.status_code == 200 else None

    theirs = await wait_for(other_reads, what="the other admin reading their own log")
    assert {e["to"] for e in theirs} == {other.email}
