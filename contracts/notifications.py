"""Events about emails the system sent or gave up on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from .envelope import Payload


class EmailSent(Payload):
    """Event: an email was handed to the mail relay."""

    TYPE: ClassVar[str] = "notifications.email_sent"

    email_id: uuid.UUID = Field(description="The delivery-log entry.")
    template: str = Field(description="Which email.", examples=["welcome"])
    to: str = Field(description="Recipient address.", examples=["ana.lima@example.org"])
    department_id: uuid.UUID | None = Field(default=None, description="Department, if any.")
    source_event_id: uuid.UUID = Field(description="The event this email answers.")
    sent_at: datetime = Field(description="When the relay accepted it (UTC).")
    attempts: int = Field(description="Attempts it took.", examples=[1])


class EmailFailed(Payload):
    """Event: an email was given up on: the relay refused it for good, or its last
    attempt failed."""

    TYPE: ClassVar[str] = "notifications.email_failed"

    email_id: uuid.UUID = Field(description="The delivery-log entry.")
    template: str = Field(description="Which email.", examples=["welcome"])
    to: str = Field(description="Recipient address.")
    department_id: uuid.UUID | None = Field(default=None, description="Department, if any.")
    source_event_id: uuid.UUID = Field(description="The event this email answers.")
    error: str = Field(description="The last error the relay gave.")
    attempts: int = Field(description="Attempts made.", examples=[5])


class EmailDeadLettered(Payload):
    """Dead letter: an email we gave up on, for operators to look into.

    Written together with ``EmailFailed`` (same transaction) to
    ``notifications.email_dead_letters.v1``: either the relay refused the message
    for good (a 5xx to its recipient or content) or the last attempt failed. The
    link it carried is never included (it may be expired by now anyway); to try
    again, ask for a new link (reset, reminder), which is a new email.
    """

    TYPE: ClassVar[str] = "notifications.email_dead_lettered"

    email_id: uuid.UUID = Field(description="The delivery-log entry.")
    template: str = Field(description="Which email.", examples=["welcome"])
    to: str = Field(description="Recipient address.", examples=["ana.lima@example.org"])
    department_id: uuid.UUID | None = Field(default=None, description="Department, if any.")
    account_id: uuid.UUID | None = Field(
        default=None, description="The recipient's account, if the email was for one."
    )
    source_event_id: uuid.UUID = Field(description="The event this email answers.")
    reason: str = Field(
        description="Why it was given up on: the last error the relay (or composing) gave.",
        examples=["recipient refused: ana.lima@example.org: 550 5.1.1 Mailbox unavailable"],
    )
    permanent: bool = Field(
        description="True: refused for good, so the remaining attempts were not made; "
        "false: every attempt failed.",
        examples=[True],
    )
    attempts: int = Field(description="Attempts made.", examples=[1])
    queued_at: datetime = Field(description="When the email was queued (UTC).")
    last_attempt_at: datetime | None = Field(
        default=None, description="When the last attempt was made (UTC)."
    )
