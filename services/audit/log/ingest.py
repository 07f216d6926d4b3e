"""Audit intake over Kafka: one FastStream subscriber on every topic the log covers.

Offsets are committed only after the fact is stored (a failed append is nacked, so the record
is read again), and the store ignores a record it has seen (by topic, partition, offset): a
crash never loses nor doubles a fact.
Partner topics carry transactional deliveries: read_committed keeps aborted ones out.
Every record's signature is checked against the registry's key of the party that must have
written it (its row in services/audit/log/catalogue.py, derived from the topic table); one
that fails is logged as forged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from services.audit.log.catalogue import Role
from services.audit.log.facts import (
    FLAGGED_DECISIONS,
    AuditFact,
    SignatureCheck,
    SourceLookup,
    UnreadableRecordError,
    fact_from_record,
    unreadable_fact,
)
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore
from shared.contracts.crypto.keys import MissingKeyError
from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.envelope import Headers
from shared.contracts.registry import Registry, UnknownOrganisationError, UnknownSourceError
from shared.contracts.topics import audited_topics_pattern
from shared.kafka_records import install as install_forgiving_record_parsing
from shared.plumbing.logging import bind_correlation_id, get_logger
from shared.plumbing.metrics import AUDIT_APPEND_SECONDS, AUDIT_APPENDS, AUDIT_LOG_SIZE, RECEIPTS
from shared.plumbing.settings import CommonSettings
from shared.plumbing.tracing import span
from shared.plumbing.transactional import record_span

log = get_logger()
APPENDS_BEFORE_UNSTORABLE = 3
UNFORESEEN = "the record could not be read"
UNSTORABLE = "the fact this record states could not be stored"


async def _raw_body(message: StreamMessage[object]) -> bytes:
    return bytes(message.body)


def _decodable(value: object) -> bytes:
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return b""
        return value
    return b""


async def _tolerant_parser(
    record: ConsumerRecord, original: Callable[[ConsumerRecord], Awaitable[StreamMessage[ConsumerRecord]]]
) -> StreamMessage[ConsumerRecord]:
    """FastStream's parser decodes every header as UTF-8, so one record with a null header value
    (Kafka allows it) or a non-UTF-8 one would fail before the handler, be nacked and read again
    forever: anyone who may write an audited topic could stop the log. It parses a copy with such
    values blanked; the handler still sees the record as sent (raw_message) and logs it."""
    safe = dataclasses.replace(record, headers=[(name, _decodable(value)) for name, value in record.headers])
    message = await original(safe)
    message.raw_message = record
    return message


def registry_signature_check(registry: Registry) -> SignatureCheck:
    """Checks a record against the one key the registry holds for the organisation named."""

    def signed_by(organisation: str, value: bytes, headers: Headers) -> bool | None:
        try:
            key = registry.ed25519_public(organisation)
        except UnknownOrganisationError:
            return False  # nobody we know: it cannot be genuine
        except MissingKeyError:
            return None  # a participant whose public key is not configured here
        try:
            verify_record([key], value, headers)
        except SignatureError:
            return False
        return True

    return signed_by


def registry_sources(registry: Registry) -> SourceLookup:
    """Maps a record's ce_source (urn:nld:oin:<OIN>:systeem:<name>) to the organisation the
    registry gives that OIN and system; None for a malformed or unknown one."""

    def organisation(source: str) -> str | None:
        try:
            return registry.organisation_at(source).id
        except UnknownSourceError:
            return None

    return organisation


def append_kind(fact: AuditFact, stored: AuditRecord | None) -> str:
    """What an append was, for the metric: a redelivery, a flagged record, or a fact."""
    if stored is None:
        return "duplicate"
    return fact.decision if fact.decision in FLAGGED_DECISIONS else "fact"


def register_audit_subscriber(
    broker: KafkaBroker,
    store: AuditStore,
    settings: CommonSettings,
    signed_by: SignatureCheck,
    sources: SourceLookup,
) -> None:
    install_forgiving_record_parsing()  # a header name that is not UTF-8 must not stop the log
    failed_appends: dict[tuple[str, int, int], int] = {}  # the records the store refused

    @broker.subscriber(
        pattern=audited_topics_pattern(settings.topic_prefix),
        group_id=settings.topic("audit"),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=_tolerant_parser,
        decoder=_raw_body,
        title="audit-intake",
        description="Every exchange fact, appended to the tamper-evident audit log.",
    )
    async def record_fact(body: bytes, message: KafkaMessage) -> None:
        raw = message.raw_message
        assert isinstance(raw, ConsumerRecord)
        with record_span(raw, settings.topic_prefix):
            await append(body, raw)

    async def append(body: bytes, raw: ConsumerRecord) -> None:
        headers = list(raw.headers)
        topic, partition, offset = raw.topic, raw.partition, raw.offset
        try:
            fact = fact_from_record(
                topic, partition, offset, headers, body, signed_by, settings.topic_prefix, sources
            )
        except Exception as error:  # UnreadableRecordError, or a record no check foresaw
            log.warning(
                "audit_unreadable_record",
                topic=topic,
                partition=partition,
                offset=offset,
                error=type(error).__name__,
            )
            problem = str(error) if isinstance(error, UnreadableRecordError) else UNFORESEEN
            fact = unreadable_fact(topic, partition, offset, headers, problem)
        bind_correlation_id(fact.correlation_id)
        provenance = (topic, partition, offset)
        if failed_appends.get(provenance, 0) >= APPENDS_BEFORE_UNSTORABLE:
            # The store took other facts but keeps refusing this one (e.g. PostgreSQL refuses a
            # NUL character in text): keep the record's provenance, nothing it carried.
            fact = unreadable_fact(topic, partition, offset, [], UNSTORABLE)
        started = time.perf_counter()
        try:
            with span("audit.append", attributes={"db.operation.name": "append"}):
                stored = await asyncio.to_thread(store.append, fact)
        except Exception:
            failed_appends[provenance] = failed_appends.get(provenance, 0) + 1
            log.exception("audit_append_failed", topic=topic, partition=partition, offset=offset)
            await asyncio.sleep(1.0)  # the store is down: back off before the record is re-read
            raise
        failed_appends.pop(provenance, None)
        AUDIT_APPEND_SECONDS.observe(time.perf_counter() - started)
        AUDIT_APPENDS.labels(append_kind(fact, stored)).inc()
        if stored is not None and stored.role is Role.RECEIPT:
            RECEIPTS.labels(fact.source, (fact.decision or "").removeprefix("receipt-")).inc()
        if stored is not None:
            AUDIT_LOG_SIZE.set(stored.seq)
            log.info("audit_recorded", seq=stored.seq, event_type=fact.event_type, signal_id=fact.signal_id)
