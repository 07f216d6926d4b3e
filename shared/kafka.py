"""Kafka plumbing every service shares: idempotent topic creation and record helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.logging import get_logger
from shared.topics import TopicSpec

log = get_logger()


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[TopicSpec], prefix: str = "", replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="safety-chain-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.prefixed(prefix),
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=dict(spec.config),
            )
            for spec in topics
            if spec.prefixed(prefix) not in existing
        ]
        if wanted:
            # Another service may create them between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
            log.info("topics_created", topics=[topic.name for topic in wanted])
        return [topic.name for topic in wanted]
    finally:
        await admin.close()


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8")
    return None
