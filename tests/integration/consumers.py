"""A service's consumer as its app wires it, driven without a broker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.service import ServiceSpec


def consumer_of(spec: ServiceSpec, engine: AsyncEngine) -> Consumer:
    """The consumer ``build_app`` makes for ``spec`` (handlers, batch handler, ignored
    messages), on ``engine``; its broker is never reached."""
    return Consumer(
        spec.name,
        engine,
        KafkaBroker("127.0.0.1:1"),
        spec.settings,
        spec.handlers,
        batch_handler=spec.batch_handler,
        batch_types=spec.batch_types,
        ignored=spec.ignored,
    )


@dataclass
class Record:
    """What ``Consumer.process_batch`` reads of a Kafka record."""

    value: bytes
    key: bytes = b"k"
    partition: int = 0
    offset: int = 0


def consumer_record(
    topic: str,
    offset: int,
    body: bytes,
    *,
    partition: int = 0,
    key: bytes = b"k",
    headers: Sequence[tuple[str, bytes]] = (),
) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka hands it to the consumer (headers included)."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=body,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(body),
        headers=list(headers),
    )
