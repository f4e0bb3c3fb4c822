"""What is queued for each event: one row per (event, template), the token still sealed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from prodigy_users.contracts.envelope import Payload, RawEnvelope, wrap
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.membership import InvitationLinkIssued, WelcomeRequested
from prodigy_users.notifications.service import (
    invitation_email,
    password_link_email,
    welcome_email,
)
from prodigy_users.runtime.keys import seal, unseal

TOKEN = "plain-Invitation_token-0123456789abcdef"
DEPT = uuid.uuid4()
EXPIRES = datetime(2026, 12, 9, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sealed(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return seal(public, TOKEN)


def raw(payload: Payload) -> RawEnvelope:
    """The envelope as notifications reads it off the wire."""
    envelope = wrap(payload, producer="membership", key=str(DEPT), correlation_id="req-1")
    return RawEnvelope.model_validate_json(envelope.encode())


def at_rest(row: dict[str, Any]) -> str:
    """Everything the row would store, as text."""
    return json.dumps(row, default=str)


def invite(key: rsa.RSAPrivateKey, **overrides: Any) -> InvitationLinkIssued:
    values: dict[str, Any] = {
        "department_id": DEPT,
        "invitation_id": uuid.uuid4(),
        "email": "nia@example.org",
        "role": "officer",
        "sealed_token": sealed(key),
        "expires_at": EXPIRES,
        "invited_by_name": "Ada Admin",
    }
    return InvitationLinkIssued(**(values | overrides))


def test_invitation_row_keeps_the_token_sealed(key: rsa.RSAPrivateKey) -> None:
    envelope = raw(invite(key))
    row = invitation_email(envelope, invite(key))
    assert TOKEN not in at_rest(row)
    assert unseal(key, row["sealed_token"]) == TOKEN
    assert row["template"] == "invitation"
    assert row["source_event_id"] == envelope.event_id
    assert row["recipient"] == "nia@example.org"
    assert row["department_id"] == DEPT
    assert row["link_expires_at"] == EXPIRES
    assert row["details"] == {"role": "officer", "inviter": "Ada Admin"}
    assert row["correlation_id"] == "req-1"


def test_a_reminder_is_its_own_email(key: rsa.RSAPrivateKey) -> None:
    first = invite(key)
    reminder = invite(key, invitation_id=first.invitation_id, reminder=True)
    a = invitation_email(raw(first), first)
    b = invitation_email(raw(reminder), reminder)
    assert b["template"] == "invitation_reminder"
    # The queue is unique per (source event, template): a reminder never collides.
    assert (a["source_event_id"], a["template"]) != (b["source_event_id"], b["template"])


def test_the_same_event_queues_the_same_email_key(key: rsa.RSAPrivateKey) -> None:
    payload = invite(key)
    envelope = raw(payload)
    a, b = invitation_email(envelope, payload), invitation_email(envelope, payload)
    assert (a["source_event_id"], a["template"]) == (b["source_event_id"], b["template"])


def test_no_inviter_means_no_inviter_detail(key: rsa.RSAPrivateKey) -> None:
    payload = invite(key, invited_by_name=None)
    assert invitation_email(raw(payload), payload)["details"] == {"role": "officer"}


def test_welcome_joined_row_has_no_secret() -> None:
    payload = WelcomeRequested(
        department_id=DEPT, account_id=uuid.uuid4(), email="nia@example.org", name="Nia New"
    )
    row = welcome_email(raw(payload), payload)
    assert row["template"] == "welcome_joined"
    assert row["sealed_token"] is None and row["link_expires_at"] is None
    assert row["recipient_name"] == "Nia New"
    assert row["department_id"] == DEPT


def test_admin_reset_row_keeps_the_token_sealed_and_the_department(
    key: rsa.RSAPrivateKey,
) -> None:
    payload = PasswordLinkIssued(
        account_id=uuid.uuid4(),
        email="nia@example.org",
        name="Nia New",
        purpose="reset",
        sealed_token=sealed(key),
        expires_at=EXPIRES - timedelta(days=14),
        department_id=DEPT,
    )
    row = password_link_email(raw(payload), payload)
    assert row["template"] == "password_reset"
    assert row["department_id"] == DEPT
    assert TOKEN not in at_rest(row)
