"""At-least-once delivery: redelivered events change nothing; unreadable ones are dead-lettered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.membership import MemberAdded
from prodigy_users.contracts.topics import IDENTITY_CREDENTIALS, MEMBERSHIP_EVENTS
from prodigy_users.runtime.keys import seal
from tests.support import Admin, Api, Keys, dead_letters, random_email

pytestmark = pytest.mark.e2e


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    return producer


def _link_event(keys: Keys, email: str, account_id: uuid.UUID) -> bytes:
    sealed = seal((keys.directory / "seal.pub.pem").read_bytes(), f"tok-{uuid.uuid4().hex}")
    payload = PasswordLinkIssued(
        account_id=account_id,
        email=email,
        name="Redelivered Person",
        purpose="welcome",
        sealed_token=sealed,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    return wrap(payload, producer="identity", key=str(account_id)).encode()


def _member_event(department_id: uuid.UUID, account_id: uuid.UUID, email: str, role: str) -> bytes:
    payload = MemberAdded(
        department_id=department_id,
        account_id=account_id,
        name=f"Person {email}",
        email=email,
        role=role,
        joined_at=datetime.now(UTC),
    )
    return wrap(payload, producer="membership", key=str(department_id)).encode()


async def test_a_redelivered_credentials_event_sends_one_email(
    api: Api, keys: Keys, bootstrap: str
) -> None:
    account = uuid.uuid4()
    email = random_email("redelivered")
    fence = random_email("fence")
    message = _link_event(keys, email, account)
    producer = await _producer(bootstrap)
    try:
        for _ in range(3):
            await producer.send_and_wait(
                IDENTITY_CREDENTIALS.name, message, key=str(account).encode()
            )
        # Same key, so the same partition: it is applied after the repeats.
        await producer.send_and_wait(
            IDENTITY_CREDENTIALS.name, _link_event(keys, fence, account), key=str(account).encode()
        )
    finally:
        await producer.stop()

    await api.wait_mail(fence)
    assert len(await api.mails(email)) == 1


async def test_a_redelivered_member_event_makes_one_report_row(
    api: Api, keys: Keys, bootstrap: str
) -> None:
    department = uuid.uuid4()
    admin_id = uuid.uuid4()
    admin_email = random_email("admin")
    fence = random_email("fence")
    message = _member_event(department, admin_id, admin_email, "admin")
    producer = await _producer(bootstrap)
    try:
        for _ in range(3):
            await producer.send_and_wait(
                MEMBERSHIP_EVENTS.name, message, key=str(department).encode()
            )
        await producer.send_and_wait(
            MEMBERSHIP_EVENTS.name,
            _member_event(department, uuid.uuid4(), fence, "member"),
            key=str(department).encode(),
        )
    finally:
        await producer.stop()
    admin = Admin(str(department), str(admin_id), admin_email, keys.token(admin_id))

    await api.wait_reported(admin, fence)
    rows = await api.report_users(admin)
    assert sorted(r["email"] for r in rows) == sorted([admin_email, fence])


async def test_unreadable_messages_go_to_the_dead_letter_topic_and_consuming_goes_on(
    api: Api, keys: Keys, bootstrap: str
) -> None:
    department = uuid.uuid4()
    admin_id = uuid.uuid4()
    marker = uuid.uuid4().hex.encode()
    garbage = b"this is not json " + marker
    bad_payload = _member_event(department, uuid.uuid4(), random_email(), "member").replace(
        b'"role":"member"', b'"role":"captain","marker":"' + marker + b'"'
    )
    producer = await _producer(bootstrap)
    key = str(department).encode()
    try:
        await producer.send_and_wait(MEMBERSHIP_EVENTS.name, garbage, key=key)
        await producer.send_and_wait(MEMBERSHIP_EVENTS.name, bad_payload, key=key)
        admin_email = random_email("admin")
        await producer.send_and_wait(
            MEMBERSHIP_EVENTS.name,
            _member_event(department, admin_id, admin_email, "admin"),
            key=key,
        )
    finally:
        await producer.stop()

    # Consumption went on past both bad messages.
    admin = Admin(str(department), str(admin_id), admin_email, keys.token(admin_id))
    await api.wait_reported(admin, admin_email)
    # Both consumers of the topic (notifications and reporting) dead-letter both messages.
    letters = await dead_letters(bootstrap, MEMBERSHIP_EVENTS.dlq, marker, 4)
    assert len(letters) == 4
    by_consumer: dict[str, list[str]] = {}
    for record in letters:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["x-original-topic"] == MEMBERSHIP_EVENTS.name
        by_consumer.setdefault(headers["x-consumer"], []).append(headers["x-dlq-reason"])
    assert sorted(by_consumer) == ["notifications", "reporting"]
    for reasons in by_consumer.values():
        assert any("not a valid envelope" in r for r in reasons), reasons
        assert any("membership.member_added" in r and "role" in r for r in reasons), reasons
