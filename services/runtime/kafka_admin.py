"""Create the registry's topics on a broker (dev stack, tests, first start)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

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
