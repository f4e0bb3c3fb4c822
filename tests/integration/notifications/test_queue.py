"""Notifications' queue on a real PostgreSQL: one email per event and template, tokens
sealed at rest, emails that wait for their department's name, and who reads the log."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    InvitationLinkIssued,
    MemberAdded,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    Role,
    WelcomeRequested,
)
from prodigy_users.contracts.topics import topic_of
from prodigy_users.notifications import service
from prodigy_users.notifications.app import spec
from prodigy_users.notifications.consumers import IGNORED, handlers
from prodigy_users.notifications.delivery import Delivery
from prodigy_users.notifications.mailer import DeliveryError, MailMessage, OnEach
from prodigy_users.notifications.service import EmailLog
from prodigy_users.notifications.settings import Settings
from prodigy_users.notifications.tables import emails, memberships
from prodigy_users.runtime.consumer import Consumer, Handler
from prodigy_users.runtime.keys import seal
from tests.integration.consumers import Record, consumer_of

pytestmark = pytest.mark.timeout(120)

TOKEN = "Plain-invitation-token_0123456789abcdefABCDEF"
SETTINGS = Settings(app_base_url="http://app.test", department_name_wait_s=60)


class Bus:
    """Delivers events to notifications as its consumer would (the broker is never used)."""

    def __init__(self, engine: AsyncEngine) -> None:
        table: Mapping[type[Payload], Handler] = handlers(SETTINGS)
        self.consumer = Consumer(
            "notifications", engine, KafkaBroker("127.0.0.1:1"), SETTINGS, table, ignored=IGNORED
        )
        self.by_type = {p.TYPE: (p, h) for p, h in table.items()}

    async def send(self, payload: Payload) -> bytes:
        key = str(payload.model_dump()["department_id"])
        body = wrap(payload, producer="membership", key=key).encode()
        await self.redeliver(payload, body)
        return body

    async def redeliver(self, payload: Payload, body: bytes) -> None:
        await self.consumer.process(topic_of(type(payload)), body, None, self.by_type)


def sealed(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return seal(public, TOKEN)


def invitation(key: rsa.RSAPrivateKey, dept: uuid.UUID, **overrides: Any) -> InvitationLinkIssued:
    values: dict[str, Any] = {
        "department_id": dept,
        "invitation_id": uuid.uuid4(),
        "email": f"nia-{uuid.uuid4().hex[:6]}@example.org",
        "role": "officer",
        "sealed_token": sealed(key),
        "expires_at": datetime.now(UTC) + timedelta(days=14),
        "invited_by_name": "Ada Admin",
    }
    return InvitationLinkIssued(**(values | overrides))


async def rows(engine: AsyncEngine, dept: uuid.UUID) -> list[Any]:
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                emails,
                sa.cast(sa.text("emails"), sa.Text).label("whole"),
                (emails.c.next_attempt_at <= sa.func.now()).label("due"),
            )
            .where(emails.c.department_id == dept)
            .order_by(emails.c.created_at)
        )
        return list(result)


async def test_each_invitation_event_is_one_email_with_its_token_sealed(
    engine: AsyncEngine, key: rsa.RSAPrivateKey
) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    await bus.send(DepartmentCreated(department_id=dept, name="Springfield EMS"))
    first = invitation(key, dept)
    body = await bus.send(first)
    await bus.redeliver(first, body)  # a redelivery: still one email
    reminder = invitation(key, dept, invitation_id=first.invitation_id, email=first.email)
    reminder = reminder.model_copy(update={"reminder": True})
    await bus.send(reminder)

    found = await rows(engine, dept)
    assert [r.template for r in found] == ["invitation", "invitation_reminder"]
    for row in found:
        assert row.due, "the department is known: due at once"
        assert TOKEN not in row.whole, "the token is never stored in the clear"
        assert row.sealed_token is not None
        # Trace context joins the details when a tracer is configured (another test
        # module may have set one for the whole process): not what this test is about.
        shown = {k: v for k, v in row.details.items() if not k.startswith("trace.")}
        assert shown == {"role": "officer", "inviter": "Ada Admin"}


async def test_an_email_waits_for_its_department_name_and_goes_when_it_arrives(
    engine: AsyncEngine, key: rsa.RSAPrivateKey
) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    await bus.send(invitation(key, dept))
    [held] = await rows(engine, dept)
    assert not held.due, "no name yet: the email waits"

    await bus.send(DepartmentCreated(department_id=dept, name="Late Fire Dept"))
    [released] = await rows(engine, dept)
    assert released.due, "the name arrived: the email is due now"

    async def never(
        messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        raise AssertionError("not sending here")

    claimed = await service.claim_due(engine, limit=500, lease=timedelta(seconds=60))
    [mine] = [e for e in claimed if e.department_id == dept]
    assert mine.department_name == "Late Fire Dept"
    assert mine.details["role"] == "officer"
    composed = Delivery(engine, SETTINGS, never, key).compose(mine, datetime.now(UTC))
    message = message_from_bytes(composed.data, policy=policy.default)
    assert "Late Fire Dept" in message["Subject"]
    text = message.get_body(("plain",))
    assert text is not None
    assert f"http://app.test/invitations/{TOKEN}" in text.get_content()


async def test_welcome_after_joining_is_one_email_without_a_secret(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    await bus.send(DepartmentCreated(department_id=dept, name="Ogdenville"))
    payload = WelcomeRequested(
        department_id=dept, account_id=uuid.uuid4(), email="nia@example.org", name="Nia New"
    )
    body = await bus.send(payload)
    await bus.redeliver(payload, body)
    [row] = await rows(engine, dept)
    assert row.template == "welcome_joined"
    assert row.sealed_token is None and row.recipient_name == "Nia New"


async def test_the_email_log_follows_who_is_admin(engine: AsyncEngine) -> None:
    bus = Bus(engine)
    dept = uuid.uuid4()
    ada, nia = uuid.uuid4(), uuid.uuid4()
    await bus.send(
        MemberAdded(
            department_id=dept,
            account_id=ada,
            name="Ada Admin",
            email="ada@example.org",
            role="admin",
            joined_at=datetime.now(UTC),
        )
    )
    assert await EmailLog(engine).is_admin(dept, ada)
    await bus.send(
        MemberRoleChanged(department_id=dept, account_id=ada, role="member", previous_role="admin")
    )
    assert not await EmailLog(engine).is_admin(dept, ada)
    await bus.send(
        MemberRestored(
            department_id=dept,
            account_id=nia,
            name="Nia New",
            email="nia@example.org",
            role="admin",
            status="active",
            restored_at=datetime.now(UTC),
        )
    )
    assert await EmailLog(engine).is_admin(dept, nia)
    await bus.send(MemberRemoved(department_id=dept, account_id=nia))
    assert not await EmailLog(engine).is_admin(dept, nia)


async def test_a_batch_of_member_events_leaves_each_persons_last_role(engine: AsyncEngine) -> None:
    """An import's member events arrive in batches and are kept in two statements:
    the order inside the batch still decides."""
    consumer = consumer_of(spec(SETTINGS), engine)
    dept = uuid.uuid4()
    ada, nia, ola, mia = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def added(account: uuid.UUID, role: Role) -> MemberAdded:
        return MemberAdded(
            department_id=dept,
            account_id=account,
            name="Someone",
            email=f"{account.hex}@example.org",
            role=role,
            joined_at=datetime.now(UTC),
        )

    await Bus(engine).send(added(nia, "admin"))  # known before the batch
    run: list[Payload] = [
        added(mia, "member"),
        added(ada, "admin"),
        MemberRoleChanged(department_id=dept, account_id=ada, role="member", previous_role="admin"),
        MemberRemoved(department_id=dept, account_id=nia),
        added(ola, "officer"),
        MemberRemoved(department_id=dept, account_id=ola),
        MemberRestored(
            department_id=dept,
            account_id=ola,
            name="Ola",
            email="ola@example.org",
            role="admin",
            status="active",
            restored_at=datetime.now(UTC),
        ),
    ]
    batch = [
        (topic_of(type(p)), Record(wrap(p, producer="membership", key=str(dept)).encode()))
        for p in run
    ]
    await consumer.process_batch(batch, consumer.by_type())
    assert not await EmailLog(engine).is_admin(dept, ada)
    assert not await EmailLog(engine).is_admin(dept, nia)
    assert await EmailLog(engine).is_admin(dept, ola)
    assert not await EmailLog(engine).is_admin(dept, mia)
    async with engine.connect() as conn:  # only admins are kept
        kept = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(memberships)
            .where(memberships.c.department_id == dept)
        )
    assert kept == 1
