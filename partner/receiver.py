"""Receive, verify the envelope of, and open deliveries on a partner topic."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict

from shared.contracts.events import SignalDelivered
from shared.crypto.sealing import b64decode, delivery_context, open_sealed
from shared.envelope import Envelope
from shared.topics import partner_topic


class ReceivedSignal(BaseModel):
    """One opened delivery: the obligations in clear, the agreed data decrypted."""

    model_config = ConfigDict(frozen=True)

    signal_id: str
    municipality: str
    agreement_id: str
    agreement_version: int
    purpose: str
    legal_basis: str
    retention_days: int
    fields: tuple[str, ...]
    partner_pseudonym: str
    data: dict[str, Any]
    delivered_at: datetime
    correlation_id: str


def open_delivery(
    partner_id: str, private_key: X25519PrivateKey, headers: list[tuple[str, bytes]], value: bytes
) -> ReceivedSignal:
    """Raises ValueError (or SealError) when the record is not a delivery for this partner."""
    envelope = Envelope.from_headers(headers)
    if envelope.type != SignalDelivered.event_type:
        raise ValueError(f"unexpected event type {envelope.type}")
    delivered = SignalDelivered.model_validate_json(value)
    if delivered.recipient != partner_id:
        raise ValueError(f"delivery addressed to {delivered.recipient}, not {partner_id}")
    signal_id = str(delivered.signal_id)
    data = json.loads(
        open_sealed(
            private_key, b64decode(delivered.payload.ciphertext), delivery_context(signal_id, partner_id)
        )
    )
    return ReceivedSignal(
        signal_id=signal_id,
        municipality=delivered.municipality,
        agreement_id=delivered.agreement_id,
        agreement_version=delivered.agreement_version,
        purpose=delivered.purpose,
        legal_basis=delivered.legal_basis,
        retention_days=delivered.retention_days,
        fields=delivered.fields,
        partner_pseudonym=delivered.partner_pseudonym,
        data=data,
        delivered_at=delivered.delivered_at,
        correlation_id=envelope.correlation_id,
    )


class PartnerReceiver:
    def __init__(
        self,
        partner_id: str,
        private_key: X25519PrivateKey,
        kafka_options: dict[str, Any],
        topic_prefix: str = "",
        group_id: str | None = None,
    ) -> None:
        """`kafka_options`: aiokafka connection options, at least `bootstrap_servers`
        (shared.kafka.client_options builds them from settings, SASL included)."""
        self._partner_id = partner_id
        self._private_key = private_key
        self._kafka_options = kafka_options
        self._topic = partner_topic(partner_id).prefixed(topic_prefix)
        self._group_id = group_id

    async def receive(self, count: int | None = None, wait_seconds: float = 10.0) -> list[ReceivedSignal]:
        """Deliveries from the topic's start (or the group's position) until `count` or `wait_seconds`."""
        consumer = AIOKafkaConsumer(
            self._topic,
            **self._kafka_options,
            group_id=self._group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        received: list[ReceivedSignal] = []
        processed: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + wait_seconds
        try:
            while (count is None or len(received) < count) and time.monotonic() < deadline:
                remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
                batch = await consumer.getmany(timeout_ms=min(remaining_ms, 500))
                for partition, records in batch.items():
                    for record in records:
                        if count is not None and len(received) >= count:
                            break
                        received.append(
                            open_delivery(
                                self._partner_id, self._private_key, list(record.headers), record.value
                            )
                        )
                        processed[partition] = record.offset + 1
            if self._group_id is not None and processed:
                # Commit only what was handed back: the next receive continues right after it.
                await consumer.commit(processed)
        finally:
            await consumer.stop()
        return received

    def receive_sync(self, count: int | None = None, wait_seconds: float = 10.0) -> list[ReceivedSignal]:
        return asyncio.run(self.receive(count, wait_seconds))
