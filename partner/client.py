"""The partner client: consume your own topic, open each delivery, acknowledge it with a receipt.

Delivery is at least once: a delivery's offset is committed only after your handler returned
and the signed receipt was written, so a crash in between shows you the delivery again. Make
your handler idempotent by `delivery_id`, or pass a `ProcessedSignals` store and the client
skips the handler for delivery ids it already processed (it still acknowledges them). Erasure
notices on the same topic go to your erasure handler, and are acknowledged as "erased".
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from partner.deliveries import (
    DeliveryRefused,
    ErasureRequest,
    ReceivedSignal,
    open_delivery,
    open_notice,
    record_type,
)
from shared.contracts.crypto.signing import SignatureError, sign_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import DeliveryProvenance, ErasureNotice, ExchangeReceipt
from shared.contracts.registry import Registry
from shared.contracts.sources import parse_source
from shared.contracts.topics import EXCHANGE_RECEIPTS, partner_topic
from shared.kafka_records import install as install_forgiving_record_parsing

log = logging.getLogger(__name__)
Handler = Callable[[ReceivedSignal], Awaitable[None]]
ErasureHandler = Callable[[ErasureRequest], Awaitable[None]]


@dataclass(frozen=True)
class PartnerIdentity:
    """Who you are in safety-chain, and your two private keys."""

    partner_id: str
    decryption_key: X25519PrivateKey  # opens your deliveries
    signing_key: Ed25519PrivateKey  # signs your receipts
    # Your CloudEvents source, urn:nld:oin:<your OIN>:systeem:<your system>; by default the one
    # the registry (organisations.yaml) gives you.
    source: str | None = None


def refusal(error: Exception) -> DeliveryRefused:
    """Why a record was not opened, as its receipt says it: a stable reason, never text the
    record itself supplied (a signature error's message may quote a header)."""
    if isinstance(error, DeliveryRefused):
        if isinstance(error.__cause__, SignatureError):
            return DeliveryRefused(error.__cause__.reason, error.delivery_id)
        return error
    log.warning("record not opened: %s", type(error).__name__)
    return DeliveryRefused(f"unreadable record ({type(error).__name__})")


class ProcessedSignals:
    """Delivery ids your application has processed, in a local SQLite file."""

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
        consent_source: str | None = None,
    ) -> None:
        """`kafka_options`: aiokafka connection options, at least `bootstrap_servers`
        (shared.plumbing.kafka.client_options builds them from settings, SASL included).
        `group_id` defaults to your partner id, the consumer group your ACLs allow.
        `consent_source` is the CloudEvents source every delivery and notice must carry (the
        consent service's); it and your identity's source default to what the registry
        (organisations.yaml in the configured config dir) says."""
        own_source = identity.source
        if own_source is None or consent_source is None:
            registry = Registry.configured()
            own_source = own_source or registry.source(identity.partner_id)
            consent_source = consent_source or registry.source("consent")
        self._source = parse_source(own_source).urn  # ValueError for a malformed one
        self._consent_source = parse_source(consent_source).urn
        self._identity = identity
        self._consent_key = consent_key
        self._kafka_options = kafka_options
        self._prefix = topic_prefix
        self._topic = partner_topic(identity.partner_id).prefixed(topic_prefix)
        self._group_id = group_id or f"{topic_prefix}{identity.partner_id}"
        self._processed = processed
        install_forgiving_record_parsing()  # a header name that is not UTF-8 must not stop you

    def open(self, record: ConsumerRecord) -> ReceivedSignal:
        """Verify and decrypt one record of your topic; raises DeliveryRefused."""
        return open_delivery(
            self._identity.partner_id,
            self._identity.decryption_key,
            self._consent_key,
            list(record.headers),
            record.value or b"",
            self._consent_source,
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
                        except Exception as error:  # DeliveryRefused, or a record no check foresaw
                            refusal(error)
                            continue
        finally:
            await consumer.stop()
        return received[:count] if count is not None else received

    async def process(
        self,
        handler: Handler,
        count: int | None = None,
        wait_seconds: float = 10.0,
        on_erasure: ErasureHandler | None = None,
    ) -> int:
        """Hand each new delivery to `handler`, then acknowledge it; returns how many were opened.

        An erasure notice goes to `on_erasure`: erase what you hold under its pseudonym; when it
        returns, the receipt says "erased". Without `on_erasure` a notice is acknowledged as
        refused ("no erasure handler"), which the audit log shows as an erasure not carried out.
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
                        opened += await self._handle(record, handler, on_erasure, producer)
                        await consumer.commit({partition: record.offset + 1})
        finally:
            await producer.stop()
            await consumer.stop()
        return opened

    async def _handle(
        self,
        record: ConsumerRecord,
        handler: Handler,
        on_erasure: ErasureHandler | None,
        producer: AIOKafkaProducer,
    ) -> int:
        provenance = DeliveryProvenance(topic=record.topic, partition=record.partition, offset=record.offset)
        headers = list(record.headers)
        if record_type(headers) == ErasureNotice.event_type:
            try:
                notice = open_notice(
                    self._identity.partner_id,
                    self._consent_key,
                    headers,
                    record.value or b"",
                    self._consent_source,
                )
            except Exception as error:  # DeliveryRefused, or a record no check foresaw
                await self._acknowledge(producer, provenance, refused=refusal(error))
                return 0
            if on_erasure is None:
                await self._acknowledge(
                    producer, provenance, notice=notice, refused=DeliveryRefused("no erasure handler")
                )
                return 0
            await on_erasure(notice)
            await self._acknowledge(producer, provenance, notice=notice)
            return 0
        try:
            signal = self.open(record)
        except Exception as error:  # DeliveryRefused, or a record no check foresaw
            await self._acknowledge(producer, provenance, refused=refusal(error))
            return 0
        if self._processed is None or signal.delivery_id not in self._processed:
            await handler(signal)
            if self._processed is not None:
                self._processed.add(signal.delivery_id)
        await self._acknowledge(producer, provenance, signal=signal)
        return 1

    async def _acknowledge(
        self,
        producer: AIOKafkaProducer,
        provenance: DeliveryProvenance,
        signal: ReceivedSignal | None = None,
        notice: ErasureRequest | None = None,
        refused: DeliveryRefused | None = None,
    ) -> None:
        delivery_id = signal.delivery_id if signal else refused.delivery_id if refused else None
        status: Literal["opened", "refused", "erased"] = (
            "refused" if refused else "erased" if notice else "opened"
        )
        receipt = ExchangeReceipt(
            delivery_id=uuid.UUID(delivery_id) if delivery_id else None,
            notice_id=uuid.UUID(notice.notice_id) if notice else None,
            recipient=self._identity.partner_id,
            status=status,
            reason=refused.reason[:200] if refused else None,
            agreement_id=signal.agreement_id if signal else None,
            agreement_version=signal.agreement_version if signal else None,
            partner_pseudonym=signal.partner_pseudonym
            if signal
            else notice.partner_pseudonym
            if notice
            else None,
            delivery=provenance,
            received_at=datetime.now(UTC),
        )
        correlation = signal.correlation_id if signal else notice.correlation_id if notice else None
        envelope = Envelope(
            source=self._source,
            type=ExchangeReceipt.event_type,
            time=receipt.received_at,
            subject=receipt.partner_pseudonym,
            extensions=ExchangeReceipt.envelope_extensions(
                deliveryid=str(receipt.delivery_id) if receipt.delivery_id else None,
                noticeid=str(receipt.notice_id) if receipt.notice_id else None,
            ),
            **({"correlation_id": correlation} if correlation else {}),
        )
        value = receipt.to_bytes()
        await producer.send_and_wait(
            EXCHANGE_RECEIPTS.prefixed(self._prefix),
            value,
            key=str(receipt.delivery_id or receipt.notice_id or receipt.receipt_id).encode(),
            headers=sign_record(self._identity.signing_key, value, envelope.to_headers()),
        )
