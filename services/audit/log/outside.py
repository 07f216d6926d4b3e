"""The log's checkpoints as kept outside its store: read back from audit.checkpoints.v1.

Whoever can write the audit database can rewrite records, nodes and stored checkpoints together;
the records on the topic they cannot. Each is believed only when the audit service's key signed
the Kafka record, its type is a checkpoint and its note opens with the log's note key; anything
else is skipped and logged (and could only come from the audit principal: the ACLs let no one
else write the topic).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import AuditCheckpoint
from shared.contracts.tlog.checkpoint import Checkpoint, open_checkpoint
from shared.contracts.tlog.note import Verifier
from shared.contracts.topics import AUDIT_CHECKPOINTS
from shared.plumbing.kafka import client_options, topic_partitions
from shared.plumbing.logging import get_logger
from shared.plumbing.settings import CommonSettings

log = get_logger()
READ_TIMEOUT_SECONDS = 30.0


def believed(record: ConsumerRecord, audit_key: Ed25519PublicKey, log_key: Verifier) -> Checkpoint | None:
    headers = list(record.headers)
    try:
        verify_record([audit_key], record.value or b"", headers)
        if Envelope.from_headers(headers).type != AuditCheckpoint.event_type:
            raise ValueError("not a checkpoint")
        event = AuditCheckpoint.model_validate_json(record.value or b"")
        checkpoint = open_checkpoint(event.note, log_key).checkpoint
        if checkpoint.size != event.size:
            raise ValueError("the note and the event name different sizes")
    except (SignatureError, ValueError) as error:  # pydantic's and the note's errors are ValueErrors
        log.warning("checkpoint_record_untrusted", offset=record.offset, error=type(error).__name__)
        return None
    return checkpoint


class PublishedCheckpoints:
    """Every believed checkpoint on the topic, oldest first, read a little at a time: each call
    reads only what was published since the last one (from the positions it reached, kept in
    this process). The audit service's verifier asks on every run; a month of checkpoints, one
    every five seconds, is half a million records, each with two signatures to check once."""

    def __init__(self, settings: CommonSettings, audit_key: Ed25519PublicKey, log_key: Verifier) -> None:
        self._settings = settings
        self._audit_key = audit_key
        self._log_key = log_key
        self._positions: dict[TopicPartition, int] = {}
        self._believed: list[Checkpoint] = []
        self._reading = asyncio.Lock()

    async def __call__(self) -> list[Checkpoint]:
        async with self._reading:
            consumer = AIOKafkaConsumer(
                **client_options(self._settings), enable_auto_commit=False, isolation_level="read_committed"
            )
            await consumer.start()
            try:
                topic = AUDIT_CHECKPOINTS.prefixed(self._settings.topic_prefix)
                partitions = await topic_partitions(consumer, topic)
                consumer.assign(partitions)
                for partition in partitions:
                    if partition in self._positions:
                        consumer.seek(partition, self._positions[partition])
                    else:
                        await consumer.seek_to_beginning(partition)
                found = await self._read_to_the_end(consumer, partitions)
                # only a read that reached the end moves on: a failed one is read again next time
                self._positions = {partition: await consumer.position(partition) for partition in partitions}
                self._believed += found
            finally:
                await consumer.stop()
            return list(self._believed)

    async def _read_to_the_end(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> list[Checkpoint]:
        end = await consumer.end_offsets(partitions)
        found: list[Checkpoint] = []
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            while any([await consumer.position(partition) < end[partition] for partition in partitions]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [c for r in records if (c := believed(r, self._audit_key, self._log_key))]
        return found


async def published_checkpoints(
    settings: CommonSettings, audit_key: Ed25519PublicKey, log_key: Verifier
) -> list[Checkpoint]:
    """Every believed checkpoint on the topic, oldest first (read once, from the beginning)."""
    return await PublishedCheckpoints(settings, audit_key, log_key)()
