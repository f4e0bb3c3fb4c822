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
    """Event: an email could not be delivered after its last attempt."""

    TYPE: ClassVar[str] = "notifications.email_failed"

    email_id: uuid.UUID = Field(description="The delivery-log entry.")
    template: str = Field(description="Which email.", examples=["welcome"])
    to: str = Field(description="Recipient address.")
    department_id: uuid.UUID | None = Field(default=None, description="Department, if any.")
    source_event_id: uuid.UUID = Field(description="The event this email answers.")
    error: str = Field(description="The last error the relay gave.")
    attempts: int = Field(description="Attempts made.", examples=[5])
