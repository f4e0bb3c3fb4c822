"""Create the registry's topics on a broker (dev stack, tests, first start), and never
let a client create one by asking for it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import aiokafka.admin.client
import aiokafka.client
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from prodigy_users.contracts.topics import TOPICS, Topic


def new_topics(topics: Iterable[Topic], replication: int = 1) -> list[NewTopic]:
    """The registry's topics and their dead-letter topics as admin requests."""
    out: list[NewTopic] = []
    for t in topics:
        configs = {"cleanup.policy": t.cleanup_policy, "retention.ms": str(t.retention_ms)}
        out.append(NewTopic(t.name, t.partitions, replication, topic_configs=configs))
        out.append(
            NewTopic(t.dlq, 1, replication, topic_configs={"retention.ms": str(t.dlq_retention_ms)})
        )
    return out


async def ensure_topics(
    bootstrap: str, topics: Iterable[Topic] = TOPICS, **client_options: Any
) -> None:
    """Create whichever of ``topics`` (and their DLQs) the broker lacks."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, **client_options
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in new_topics(topics) if n.name not in existing]
        if missing:
            # Another service may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


class _MetadataRequestNoCreate(MetadataRequest):  # type: ignore[misc]
    """A metadata request that does not ask the broker to create missing topics."""

    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False
    ) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def refuse_auto_created_topics() -> None:
    """Make this process's Kafka clients ask for topic metadata without creating topics.

    aiokafka asks brokers to auto-create every topic it asks about, and has no setting
    against it. A topic created that way has the broker's default partition count
    (Tansu's: 4, where the registry says 6), and creating it properly afterwards
    fails ("already exists"): keys then land in other partitions than before, and
    consumers that joined meanwhile hold only some partitions. That happened whenever
    a consumer reconnected to a freshly restarted embedded broker before the supervisor
    had created the topics. Topics are the registry's to create (``ensure_topics``,
    Strimzi's ``KafkaTopic`` in production); a client asking for one that does not
    exist yet waits for it instead. Idempotent; patches aiokafka's two request sites.
    """
    aiokafka.client.MetadataRequest = _MetadataRequestNoCreate
    aiokafka.admin.client.MetadataRequest = _MetadataRequestNoCreate
