"""Composing a claimed email: open the sealed token, render, build the MIME message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.notifications.delivery import ComposeError, Delivery
from prodigy_users.notifications.domain import OutgoingEmail, link_kind
from prodigy_users.notifications.mailer import DeliveryError, MailMessage, OnEach
from prodigy_users.notifications.settings import Settings
from prodigy_users.notifications.templates import TEMPLATES
from prodigy_users.runtime.keys import seal

NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
TOKEN = "Zr1x-secret_token-value"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def delivery(key: rsa.RSAPrivateKey) -> Iterator[Delivery]:
    # The engine is never connected: compose does no I/O.
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    settings = Settings(public_base_url="https://id.example", mail_from="Prodigy <no-reply@p.dev>")

    async def never(
        messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        raise AssertionError("no sending here")

    yield Delivery(engine, settings, never, key)


def sealed(key: rsa.RSAPrivateKey, token: str = TOKEN) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return seal(public, token)


def outgoing(key: rsa.RSAPrivateKey, **overrides: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source_event_id": uuid.uuid4(),
        "template": "welcome",
        "to": "ana.lima@example.org",
        "recipient_name": "Ana Lima",
        "department_id": uuid.uuid4(),
        "department_name": "Springfield EMS",
        "account_id": uuid.uuid4(),
        "sealed_token": sealed(key),
        "link_expires_at": NOW + timedelta(days=7),
        "correlation_id": "req-1",
        "attempts": 1,
    }
    return OutgoingEmail(**(values | overrides))


def compose(delivery: Delivery, email: OutgoingEmail, now: datetime) -> EmailMessage:
    """Compose, then read the bytes back with the standard library's parser (so the
    hand-written MIME is checked by a parser that is not ours)."""
    message = delivery.compose(email, now)
    parsed = message_from_bytes(message.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == message.message_id
    assert parsed["To"] == message.to
    return parsed


def parts(message: EmailMessage) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            out[part.get_content_type()] = part.get_content()
    return out


def test_welcome_message_has_text_and_html_with_the_link(
    delivery: Delivery, key: rsa.RSAPrivateKey
) -> None:
    message = compose(delivery, outgoing(key), NOW)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "ana.lima@example.org"
    assert message["From"] == "Prodigy <no-reply@p.dev>"
    assert "Springfield EMS" in message["Subject"]
    assert message["Message-ID"].endswith("@p.dev>")
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    link = f"https://id.example/set-password?token={TOKEN}"
    assert link in body["text/plain"]
    assert link in body["text/html"]


def test_unknown_department_reads_prodigy(delivery: Delivery, key: rsa.RSAPrivateKey) -> None:
    message = compose(delivery, outgoing(key, department_name=None, department_id=None), NOW)
    assert message["Subject"] == "Your account for Prodigy"
    assert "Your account for Prodigy is ready." in parts(message)["text/plain"]


def test_reset_message(delivery: Delivery, key: rsa.RSAPrivateKey) -> None:
    message = compose(delivery, outgoing(key, template="password_reset"), NOW)
    assert message["Subject"] == "Reset your Prodigy password"
    assert TOKEN in parts(message)["text/plain"]


def test_expired_link_is_not_sent(delivery: Delivery, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ComposeError, match="expired"):
        compose(delivery, outgoing(key, link_expires_at=NOW - timedelta(seconds=1)), NOW)


def test_token_sealed_to_another_key_is_refused_without_echoing_it(
    delivery: Delivery, key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = outgoing(key, sealed_token=sealed(other))
    with pytest.raises(ComposeError, match="cannot open") as info:
        compose(delivery, email, NOW)
    assert email.sealed_token is not None and email.sealed_token not in str(info.value)


def test_without_a_key_nothing_is_composed(key: rsa.RSAPrivateKey) -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")

    async def never(
        messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        raise AssertionError

    keyless = Delivery(engine, Settings(), never, None)
    with pytest.raises(ComposeError, match="sealing key"):
        compose(keyless, outgoing(key), NOW)


APP = "https://app.example"


@pytest.fixture
def app_delivery(key: rsa.RSAPrivateKey) -> Delivery:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    settings = Settings(
        public_base_url="https://id.example",
        app_base_url=APP + "/",
        mail_from="Prodigy <no-reply@p.dev>",
    )

    async def never(
        messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        raise AssertionError("no sending here")

    return Delivery(engine, settings, never, key)


def invitation(key: rsa.RSAPrivateKey, **overrides: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "template": "invitation",
        "recipient_name": "",
        "account_id": None,
        "link_expires_at": NOW + timedelta(days=14),
        "details": {"role": "officer", "inviter": "Ada Admin"},
    }
    return outgoing(key, **(values | overrides))


@pytest.mark.parametrize("template", ["invitation", "invitation_reminder"])
def test_invitation_message_links_to_the_app_with_the_opened_token(
    app_delivery: Delivery, key: rsa.RSAPrivateKey, template: str
) -> None:
    message = compose(app_delivery, invitation(key, template=template), NOW)
    assert "Springfield EMS" in message["Subject"]
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    link = f"{APP}/invitations/{TOKEN}"
    for part in body.values():
        assert link in part
        assert "Springfield EMS" in part
        assert "an officer" in part
        assert "Ada Admin" in part
        assert "2026-12-09 21:00 UTC" in part
        assert "set-password" not in part


def test_reminder_subject_differs_from_the_first_invitation(
    app_delivery: Delivery, key: rsa.RSAPrivateKey
) -> None:
    first = compose(app_delivery, invitation(key), NOW)
    again = compose(app_delivery, invitation(key, template="invitation_reminder"), NOW)
    assert first["Subject"] != again["Subject"]
    assert again["Subject"].startswith("Reminder:")


def test_expired_invitation_is_not_sent(app_delivery: Delivery, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ComposeError, match="expired"):
        compose(app_delivery, invitation(key, link_expires_at=NOW), NOW)


def test_invitation_without_its_token_is_not_sent(
    app_delivery: Delivery, key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ComposeError, match="no token"):
        compose(app_delivery, invitation(key, sealed_token=None), NOW)


def test_welcome_joined_needs_no_token_and_no_key(key: rsa.RSAPrivateKey) -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")

    async def never(
        messages: Sequence[MailMessage], on_each: OnEach | None = None
    ) -> list[DeliveryError | None]:
        raise AssertionError

    keyless = Delivery(engine, Settings(app_base_url=APP), never, None)
    email = outgoing(key, template="welcome_joined", sealed_token=None, link_expires_at=None)
    message = compose(keyless, email, NOW)
    assert message["Subject"] == "Welcome to Springfield EMS"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert "You joined Springfield EMS" in body["text/plain"]
    assert APP in body["text/plain"]


def test_admin_asked_reset_names_the_department(delivery: Delivery, key: rsa.RSAPrivateKey) -> None:
    message = compose(delivery, outgoing(key, template="password_reset"), NOW)
    assert "An admin of Springfield EMS" in parts(message)["text/plain"]
    public = compose(
        delivery,
        outgoing(key, template="password_reset", department_id=None, department_name=None),
        NOW,
    )
    assert "Someone asked" in parts(public)["text/plain"]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_composes_a_text_and_an_html_part(
    app_delivery: Delivery, key: rsa.RSAPrivateKey, template: str
) -> None:
    kind = link_kind(template)
    email = outgoing(
        key,
        template=template,
        sealed_token=sealed(key) if kind else None,
        link_expires_at=NOW + timedelta(days=3) if kind else None,
        details={"role": "member"},
    )
    message = compose(app_delivery, email, NOW)
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert body["text/plain"].strip() and "<p>" in body["text/html"]
    assert "<" not in body["text/plain"].replace("<a@", ""), "the text part is not HTML"
    if kind is not None:
        # Both parts carry the same working link; neither carries the sealed token.
        assert TOKEN in body["text/plain"] and TOKEN in body["text/html"]
        assert email.sealed_token is not None
        assert email.sealed_token not in body["text/plain"] + body["text/html"]


def test_confirmation_links_to_the_apps_confirm_page_with_the_opened_token(
    app_delivery: Delivery, key: rsa.RSAPrivateKey
) -> None:
    email = outgoing(key, template="confirm_email", link_expires_at=NOW + timedelta(days=1))
    message = compose(app_delivery, email, NOW)
    assert message["Subject"] == "Confirm your email to join Springfield EMS"
    link = f"{APP}/confirm-email?token={TOKEN}"
    for part in parts(message).values():
        assert link in part or link.replace("&", "&amp;") in part
        assert "set-password" not in part and "/invitations/" not in part
    with pytest.raises(ComposeError, match="expired"):
        compose(app_delivery, outgoing(key, template="confirm_email", link_expires_at=NOW), NOW)


@pytest.mark.parametrize(
    ("via", "path"), [("invitation", "invitations"), ("registration_link", "join")]
)
def test_sign_in_to_join_links_to_the_link_that_was_used(
    app_delivery: Delivery, key: rsa.RSAPrivateKey, via: str, path: str
) -> None:
    email = outgoing(
        key,
        template="sign_in_to_join",
        recipient_name="",
        account_id=None,
        link_expires_at=None,
        details={"via": via},
    )
    message = compose(app_delivery, email, NOW)
    assert message["Subject"].startswith("Someone tried to register with your address")
    for part in parts(message).values():
        assert f"{APP}/{path}/{TOKEN}" in part
