"""Consume-transform-produce with exactly-once semantics, on aiokafka.

Per batch: poll signals.accepted.v1 (read_committed), enforce each record, then produce all
decisions and deliveries *and* the consumed offsets in one Kafka transaction. A crash at any
point aborts the open transaction; the restarted instance (same transactional id, so the
zombie is fenced) resumes from the last committed offsets. Partner topics are read with
isolation.level=read_committed, so nobody sees a delivery of an aborted batch.

FastStream does not expose transactions with send_offsets_to_transaction, hence plain aiokafka.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from services.consent.enforcement import SERVICE_ID, Enforcer, OutgoingRecord
from services.consent.settings import ConsentSettings
from shared.contracts.events import FieldError, RejectionReason, SignalAccepted, SignalRejected
from shared.crypto.sealing import SealError
from shared.envelope import Envelope
from shared.kafka import client_options
from shared.logging import bind_correlation_id, get_logger
from shared.topics import SIGNALS_ACCEPTED, SIGNALS_REJECTED

log = get_logger()


def _dead_letter(record: ConsumerRecord, error: Exception, prefix: str) -> OutgoingRecord:
    rejected = SignalRejected(
        signal_id=None,
        municipality=None,
        channel="consent",
        reason=RejectionReason.MALFORMED_EVENT,
        errors=(
            FieldError(
                reason=RejectionReason.MALFORMED_EVENT,
                location="",
                message=f"{record.topic}[{record.partition}]@{record.offset}: {type(error).__name__}",
            ),
        ),
        rejected_at=datetime.now(UTC),
    )
    envelope = Envelope(source=SERVICE_ID, type=SignalRejected.event_type)
    return OutgoingRecord(
        SIGNALS_REJECTED.prefixed(prefix),
        str(rejected.rejection_id).encode(),
        rejected.to_bytes(),
        envelope.to_headers(),
    )


class ConsentProcessor:
    """Owns the consumer and the transactional producer; `run` loops until cancelled."""

    def __init__(self, settings: ConsentSettings, enforcer: Enforcer) -> None:
        self._settings = settings
        self._enforcer = enforcer
        self._group_id = settings.topic(SERVICE_ID)
        self.batches_committed = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("processor not started")
        return self._consumer

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("processor not started")
        return self._producer

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def start(self) -> None:
        # aiokafka clients must be created inside the running event loop.
        settings = self._settings
        self._consumer = AIOKafkaConsumer(
            SIGNALS_ACCEPTED.prefixed(settings.topic_prefix),
            **client_options(settings),
            group_id=self._group_id,
            client_id=f"safety-chain-consent-{settings.instance_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._producer = AIOKafkaProducer(
            **client_options(settings),
            client_id=f"safety-chain-consent-{settings.instance_id}",
            transactional_id=settings.topic(f"consent-{settings.instance_id}"),
            enable_idempotence=True,
            acks="all",
        )
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    def _transform(self, record: ConsumerRecord) -> list[OutgoingRecord]:
        try:
            envelope = Envelope.from_headers(record.headers)
            bind_correlation_id(envelope.correlation_id)
            accepted = SignalAccepted.model_validate_json(record.value)
            outgoing = self._enforcer.enforce(accepted, envelope.correlation_id)
        except (ValueError, ValidationError, SealError) as error:
            log.error(
                "accepted_record_unreadable",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=type(error).__name__,
            )
            return [_dead_letter(record, error, self._settings.topic_prefix)]
        log.info(
            "signal_enforced",
            signal_id=str(accepted.signal_id),
            deliveries=sum(1 for out in outgoing if ".signals." in out.topic),
        )
        return outgoing

    async def process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        offsets = {partition: records[-1].offset + 1 for partition, records in batch.items() if records}
        try:
            async with self.producer.transaction():
                for records in batch.values():
                    for record in records:
                        for out in self._transform(record):
                            await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                await self.producer.send_offsets_to_transaction(offsets, self._group_id)
        except Exception:
            # The transaction was aborted: nothing of this batch is visible. Re-read it.
            log.exception("batch_aborted", partitions=len(offsets))
            await self.consumer.seek_to_committed()
            raise
        self.batches_committed += 1

    async def run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self._settings.max_batch)
            if not batch:
                continue
            try:
                await self.process_batch(batch)
            except Exception:
                await asyncio.sleep(1.0)  # back off, then retry from the committed offsets
