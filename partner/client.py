"""The partner client: consume your own topic, open each delivery, acknowledge it with a receipt.

Delivery is at least once: a delivery's offset is committed only after your handler returned
and the signed receipt was written, so a crash in between shows you the delivery again. Make
your handler idempotent by `signal_id`, or pass a `ProcessedSignals` store and the client
skips the handler for signal ids it already processed (it still acknowledges them).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from partner.deliveries import DeliveryRefused, ReceivedSignal, open_delivery
from shared.contracts.events import DeliveryProvenance, ExchangeReceipt
from shared.crypto.signing import sign_record
from shared.envelope import Envelope
from shared.topics import EXCHANGE_RECEIPTS, partner_topic

Handler = Callable[[ReceivedSignal], Awaitable[None]]


@dataclass(frozen=True)
class PartnerIdentity:
    """Who you are in safety-chain, and your two private keys."""

    partner_id: str
    decryption_key: X25519PrivateKey  # opens your deliveries
    signing_key: Ed25519PrivateKey  # signs your receipts


class ProcessedSignals:
    """Signal ids your application has processed, in a local SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS processed (signal_id TEXT PRIMARY KEY, at TEXT)")

    def __contains__(self, signal_id: object) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM processed WHERE signal_id = ?", (signal_id,)).fetchone()
        return row is not None

    def add(self, signal_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO processed VALUES (?, ?)", (signal_id, datetime.now(UTC).isoformat())
            )


class PartnerClient:
    def __init__(
        self,
        identity: PartnerIdentity,
        consent_key: Ed25519PublicKey,
        kafka_options: dict[str, Any],
        topic_prefix: str = "",
        group_id: str | None = None,
        processed: ProcessedSignals | None = None,
    ) -> None:
        """`kafka_options`: aiokafka connection options, at least `bootstrap_servers`
        (shared.kafka.client_options builds them from settings, SASL included).
        `group_id` defaults to your partner id, the consumer group your ACLs allow."""
        self._identity = identity
        self._consent_key = consent_key
        self._kafka_options = kafka_options
        self._prefix = topic_prefix
        self._topic = partner_topic(identity.partner_id).prefixed(topic_prefix)
        self._group_id = group_id or f"{topic_prefix}{identity.partner_id}"
        self._processed = processed

    def open(self, record: ConsumerRecord) -> ReceivedSignal:
        """Verify and decrypt one record of your topic; raises DeliveryRefused."""
        return open_delivery(
            self._identity.partner_id,
            self._identity.decryption_key,
            self._consent_key,
            list(record.headers),
            record.value or b"",
        )

    async def read(self, count: int | None = None, wait_seconds: float = 10.0) -> list[ReceivedSignal]:
        """Every delivery on your topic from its start, without acknowledging (an inspection)."""
        consumer = AIOKafkaConsumer(
            self._topic, **self._kafka_options, auto_offset_reset="earliest", isolation_level="read_committed"
        )
        await consumer.start()
        received: list[ReceivedSignal] = []
        deadline = time.monotonic() + wait_seconds
        try:
            while (count is None or len(received) < count) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        try:
                            received.append(self.open(record))
                        except DeliveryRefused:
                            continue
        finally:
            await consumer.stop()
        return received[:count] if count is not None else received

    async def process(self, handler: Handler, count: int | None = None, wait_seconds: float = 10.0) -> int:
        """Hand each new delivery to `handler`, then acknowledge it; returns how many were opened.

        Stops after `count` deliveries or `wait_seconds`. Refused records (bad signature,
        not for you, unreadable) get a receipt with status "refused" and are skipped.
        """
        consumer = AIOKafkaConsumer(
            self._topic,
            **self._kafka_options,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(**self._kafka_options, enable_idempotence=True, acks="all")
        await consumer.start()
        await producer.start()
        opened = 0
        deadline = time.monotonic() + wait_seconds
        try:
            while (count is None or opened < count) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=1)
                for partition, records in batch.items():
                    for record in records:
                        opened += await self._handle(record, handler, producer)
                        await consumer.commit({partition: record.offset + 1})
        finally:
            await producer.stop()
            await consumer.stop()
        return opened

    async def _handle(self, record: ConsumerRecord, handler: Handler, producer: AIOKafkaProducer) -> int:
        provenance = DeliveryProvenance(topic=record.topic, partition=record.partition, offset=record.offset)
        try:
            signal = self.open(record)
        except DeliveryRefused as refused:
            await self._acknowledge(producer, provenance, None, refused)
            return 0
        if self._processed is None or signal.signal_id not in self._processed:
            await handler(signal)
            if self._processed is not None:
                self._processed.add(signal.signal_id)
        await self._acknowledge(producer, provenance, signal, None)
        return 1

    async def _acknowledge(
        self,
        producer: AIOKafkaProducer,
        provenance: DeliveryProvenance,
        signal: ReceivedSignal | None,
        refused: DeliveryRefused | None,
    ) -> None:
        receipt = ExchangeReceipt(
            signal_id=(signal.signal_id if signal else refused.signal_id if refused else None),
            recipient=self._identity.partner_id,
            status="opened" if signal else "refused",
            reason=refused.reason[:200] if refused else None,
            agreement_id=signal.agreement_id if signal else None,
            agreement_version=signal.agreement_version if signal else None,
            partner_pseudonym=signal.partner_pseudonym if signal else None,
            delivery=provenance,
            received_at=datetime.now(UTC),
        )
        envelope = Envelope(
            source=self._identity.partner_id,
            type=ExchangeReceipt.event_type,
            time=receipt.received_at,
            subject=receipt.partner_pseudonym,
            extensions=ExchangeReceipt.envelope_extensions(
                signalid=str(receipt.signal_id) if receipt.signal_id else None
            ),
            **({"correlation_id": signal.correlation_id} if signal else {}),
        )
        value = receipt.to_bytes()
        await producer.send_and_wait(
            EXCHANGE_RECEIPTS.prefixed(self._prefix),
            value,
            key=str(receipt.signal_id or receipt.receipt_id).encode(),
            headers=sign_record(self._identity.signing_key, value, envelope.to_headers()),
        )
