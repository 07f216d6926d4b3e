"""Kafka plumbing every service shares: idempotent topic creation and record helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from shared.contracts.emitted import Emitted
from shared.contracts.events import Event
from shared.contracts.topics import TopicSpec, all_topics
from shared.plumbing.kafka_credentials import read_password
from shared.plumbing.logging import get_logger
from shared.plumbing.record_writer import RecordWriter
from shared.plumbing.settings import CommonSettings, Environment

log = get_logger()


def sasl_credentials(settings: CommonSettings) -> tuple[str, str]:
    """The principal and its password: configured, or in development the principal's file."""
    user = settings.kafka_sasl_username
    if not user:
        raise ValueError("no Kafka principal: set SC_KAFKA_SASL_USERNAME")
    if settings.kafka_sasl_password is not None:
        return user, settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_sasl_password_file is not None:
        return user, settings.kafka_sasl_password_file.read_text(encoding="utf-8").strip()
    if settings.environment is not Environment.DEVELOPMENT:
        raise ValueError("no Kafka password: set SC_KAFKA_SASL_PASSWORD")
    return user, read_password(settings.kafka_credentials_folder, user)


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """Connection options for any aiokafka client (consumer, producer, admin)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers}
    if settings.kafka_security_protocol != "PLAINTEXT":
        user, password = sasl_credentials(settings)
        options |= {
            "security_protocol": settings.kafka_security_protocol,
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }
    if settings.kafka_security_protocol == "SASL_SSL":
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    return options


def faststream_security(settings: CommonSettings) -> BaseSecurity | None:
    """The same connection options, in the form FastStream's KafkaBroker takes them."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    user, password = sasl_credentials(settings)
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    ssl = settings.kafka_security_protocol == "SASL_SSL"
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return scram(
        user,
        password,
        ssl_context=create_ssl_context(cafile=cafile) if ssl else None,
        use_ssl=ssl,
    )


async def ensure_topics(
    settings: CommonSettings, topics: Iterable[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    return await create_missing_topics(
        client_options(settings), settings.topic_prefix, topics, replication_factor
    )


async def create_missing_topics(
    options: dict[str, Any], prefix: str, topics: Iterable[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """The same, connecting with `options` (e.g. as the cluster admin)."""
    admin = AIOKafkaAdminClient(**options, client_id="safety-chain-topics")
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


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, wait_seconds: float = 30.0
) -> list[TopicPartition]:
    """The topic's partitions, waiting for metadata: right after a topic is created the
    cluster may not list its partitions in the first refresh."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, partition) for partition in sorted(partitions)]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no partitions known for {topic}")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)


async def ensure_declared_topics(settings: CommonSettings, partner_ids: list[str]) -> list[str]:
    """At service start-up: create the declared topics where this deployment owns them."""
    if not settings.creates_topics:
        return []
    return await ensure_topics(settings, all_topics(partner_ids))


def faststream_broker(settings: CommonSettings, client_id: str, **options: Any) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        security=faststream_security(settings),
        **options,
    )


class SignedPublisher:
    """Writes one service's own records outside any consume-transform-produce loop (consent's
    state changes on request, audit's read records): idempotent, acks=all, signed by the service
    through its record writer. `publish` returns once the cluster holds the record."""

    def __init__(self, settings: CommonSettings, signing_key: Ed25519PrivateKey, source: str) -> None:
        self._settings = settings
        self._writer = RecordWriter(signing_key, source, settings.topic_prefix)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **client_options(self._settings), enable_idempotence=True, acks="all"
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(
        self, key: str, event: Event, subject: str | None = None, correlation_id: str | None = None
    ) -> None:
        """Write `event` on the topic the table names for its type (the record writer's)."""
        assert self._producer is not None, "publisher not started"
        record = self._writer.record(Emitted(event, key=key, subject=subject, correlation_id=correlation_id))
        await self._producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
