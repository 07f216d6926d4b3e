"""The log's checkpoints as kept outside its store: read back from audit.checkpoints.v1.

Whoever can write the audit database can rewrite records, nodes and stored checkpoints together;
the records on the topic they cannot. Each is believed only when the audit service's key signed
the Kafka record, its type is a checkpoint and its note opens with the log's note key; anything
else is skipped and logged (and could only come from the audit principal: the ACLs let no one
else write the topic).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord
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


async def published_checkpoints(
    settings: CommonSettings, audit_key: Ed25519PublicKey, log_key: Verifier
) -> list[Checkpoint]:
    """Every believed checkpoint on the topic, oldest first."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, AUDIT_CHECKPOINTS.prefixed(settings.topic_prefix))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[Checkpoint] = []
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            while any([await consumer.position(partition) < end[partition] for partition in partitions]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [c for record in records if (c := believed(record, audit_key, log_key))]
        return found
    finally:
        await consumer.stop()
