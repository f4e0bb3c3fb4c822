"""The envelope every message on every topic travels in.

Subscribers read ``type`` and ``version`` to pick the payload model, dedupe on
``event_id`` (delivery is at least once), and keep per-key order by relying on
``key`` being the Kafka message key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event and command payload.

    ``TYPE`` names the message (``membership.member_added``), ``VERSION`` is its
    schema version within the topic's major version: a version only ever adds
    optional fields, so a subscriber of version 1 can read version 2.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=Payload)


def _now() -> datetime:
    return datetime.now(UTC)


class EnvelopeBase(BaseModel):
    """Metadata shared by every message on the bus."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Unique id of this message; redeliveries carry the same id, so dedupe on it.",
        examples=["6f1c1f3e-0b7e-4b8e-9d2a-1c1f0a7e9b11"],
    )
    type: str = Field(
        description="What the payload is, e.g. `membership.member_added`.",
        examples=["membership.member_added"],
    )
    version: int = Field(default=1, description="Schema version of the payload type.", examples=[1])
    occurred_at: datetime = Field(
        default_factory=_now,
        description="When the change happened (UTC), not when it was published.",
        examples=["2026-11-25T21:00:00Z"],
    )
    producer: str = Field(
        description="The service that wrote the message.", examples=["membership"]
    )
    correlation_id: str | None = Field(
        default=None,
        description="Id shared by every message caused by one user request.",
        examples=["req-4f1e0c"],
    )
    causation_id: str | None = Field(
        default=None,
        description="`event_id` of the message that caused this one, if any.",
        examples=["1b7c9a55-3a1d-4f55-8a33-5d1e2b8c7f00"],
    )
    key: str = Field(
        description=(
            "Partition key (also the Kafka message key): every message with the same key is "
            "delivered in the order it was written."
        ),
        examples=["9b2f4c1a-8c53-4c71-9e4b-2d0b1f7d5e6a"],
    )


class Envelope(EnvelopeBase, Generic[P]):
    """A message on the bus: the shared metadata plus its payload in ``data``."""

    data: P = Field(description="The payload; its schema depends on `type` and `version`.")

    def encode(self) -> bytes:
        """Serialise for the wire (UTF-8 JSON)."""
        return self.model_dump_json().encode()


class RawEnvelope(EnvelopeBase):
    """An envelope as read off the wire, its payload not validated yet."""

    data: dict[str, Any] = Field(description="The payload, still untyped.")


def wrap(
    payload: P,
    *,
    producer: str,
    key: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope[P]:
    """Put a payload in an envelope with a fresh ``event_id``."""
    return Envelope[P](
        type=payload.TYPE,
        version=payload.VERSION,
        producer=producer,
        key=key,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=payload,
    )
