"""Consume-transform-produce with exactly-once semantics, on aiokafka.

Per batch: poll the input topics (read_committed), transform each record into output records,
then produce all outputs *and* the consumed offsets in one Kafka transaction. A crash at any
point aborts the open transaction; the restarted instance (same transactional id, so a zombie
of it is fenced) resumes from the last committed offsets. Readers of the outputs use
isolation.level=read_committed, so nobody sees the outputs of an aborted batch.

FastStream does not expose transactions with send_offsets_to_transaction, hence plain aiokafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import ProducerFenced
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.events import Event
from shared.crypto.signing import sign_record
from shared.envelope import Envelope, Headers
from shared.kafka import client_options
from shared.logging import get_logger
from shared.settings import CommonSettings

log = get_logger()
UNREADY_AFTER_FAILURES = 5
MAX_BACKOFF_SECONDS = 5.0


def backoff_seconds(failures_in_a_row: int) -> float:
    """1, 2, 4, then MAX_BACKOFF_SECONDS between retries of a batch that keeps failing."""
    return min(2.0 ** (failures_in_a_row - 1), MAX_BACKOFF_SECONDS)


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes | None  # None: a tombstone on a compacted topic
    headers: Headers


def signed_record(
    signing_key: Ed25519PrivateKey, topic: str, key: str, event: Event, envelope: Envelope
) -> OutgoingRecord:
    """The record carrying `event`, signed over its exact value bytes and envelope."""
    value = event.to_bytes()
    return OutgoingRecord(topic, key.encode(), value, sign_record(signing_key, value, envelope.to_headers()))


def signed_tombstone(
    signing_key: Ed25519PrivateKey, topic: str, key: str, envelope: Envelope
) -> OutgoingRecord:
    """A tombstone (no value) on a compacted topic, its envelope signed over the empty value:
    a reader believes a deletion only from the one who may delete (its ce_subject names the key)."""
    return OutgoingRecord(topic, key.encode(), None, sign_record(signing_key, b"", envelope.to_headers()))


Transform = Callable[[ConsumerRecord], Awaitable[list[OutgoingRecord]]]


class TransactionalProcessor:
    """Owns one consumer and one transactional producer; `run` loops until cancelled.

    `transform` must not raise for bad input: it turns a poison record into a dead letter.
    An exception from it (or from Kafka) aborts the batch, which is then read again.
    """

    def __init__(
        self,
        settings: CommonSettings,
        *,
        name: str,
        topics: list[str],
        transactional_id: str,
        transform: Transform,
        max_batch: int = 100,
        before_batch: Callable[[], Awaitable[None]] | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        after_abort: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """`before_batch` runs before each batch is transformed (e.g. to catch up state);
        `before_commit` after it is transformed, inside its transaction (e.g. to make side
        state durable: if it raises, the transaction aborts); `after_abort` when it aborted;
        `after_commit` once its transaction committed (the only moment to tell anyone that
        the batch's outputs exist)."""
        self._settings = settings
        self._name = name
        self._topics = topics
        self._group_id = settings.topic(name)
        self._transactional_id = settings.topic(transactional_id)
        self._transform = transform
        self._max_batch = max_batch
        self._before_batch = before_batch
        self._before_commit = before_commit
        self._after_abort = after_abort
        self._after_commit = after_commit
        self._failures_in_a_row = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"{self._name} processor not started")
        return self._consumer

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError(f"{self._name} processor not started")
        return self._producer

    @property
    def ready(self) -> bool:
        """Assigned partitions, and not stuck: a batch that keeps failing makes it unready, so an
        orchestrator notices (and restarts) a processor that retries forever."""
        assigned = self._consumer is not None and bool(self._consumer.assignment())
        return assigned and self._failures_in_a_row < UNREADY_AFTER_FAILURES

    async def start(self) -> None:
        # aiokafka clients must be created inside the running event loop.
        options = client_options(self._settings)
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            **options,
            group_id=self._group_id,
            client_id=f"safety-chain-{self._transactional_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._producer = AIOKafkaProducer(
            **options,
            client_id=f"safety-chain-{self._transactional_id}",
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
        )
        await self._producer.start()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        offsets = {partition: records[-1].offset + 1 for partition, records in batch.items() if records}
        try:
            if self._before_batch is not None:
                await self._before_batch()
            async with self.producer.transaction():
                for records in batch.values():
                    for record in records:
                        for out in await self._transform(record):
                            await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                if self._before_commit is not None:
                    await self._before_commit()
                await self.producer.send_offsets_to_transaction(offsets, self._group_id)
        except Exception:
            # The transaction was aborted: nothing of this batch is visible. Re-read it.
            log.exception("batch_aborted", processor=self._name, partitions=len(offsets))
            if self._after_abort is not None:
                self._after_abort()
            # Rewind to the batch's first records. (Not seek_to_committed: aiokafka leaves the
            # position alone where nothing was committed yet, which would skip the batch.)
            for partition, records in batch.items():
                if records:
                    self.consumer.seek(partition, records[0].offset)
            raise
        if self._after_commit is not None:
            self._after_commit()

    async def run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self._max_batch)
            if not batch:
                continue
            try:
                await self.process_batch(batch)
            except ProducerFenced:
                log.error("producer_fenced", processor=self._name)  # another instance took over
                raise
            except Exception:
                self._failures_in_a_row += 1
                await asyncio.sleep(backoff_seconds(self._failures_in_a_row))  # then retry the same batch
            else:
                self._failures_in_a_row = 0
