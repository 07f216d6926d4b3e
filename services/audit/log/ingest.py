"""Audit intake over Kafka: one consume loop on every topic the log covers, a batch at a time,
every fact exactly once.

A batch is what one poll returns (up to `max_batch` records, over every assigned partition). Each
record becomes a fact (facts.py): its signature is checked against the registry's key of the party
that must have written it (its row in catalogue.py, derived from the topic table), its type must
belong on its topic; one that fails is kept as forged, one that cannot be read as unreadable. The
facts are appended in ONE store transaction, together with the offsets the batch was consumed up to
(store.py `append_batch`). Partner topics carry transactional deliveries: read_committed keeps
aborted ones out.

Where the intake resumes is the store's to say, not Kafka's. On every assignment (start,
rebalance) each partition is sought to the offset the store keeps for it; a partition the store
never read starts at the group's committed offset (the earliest when there is none). Once the
store committed a batch, its offsets are committed to Kafka too, for Kafka's tooling and lag
alerts, but nothing depends on that commit. So:
- killed before the store committed: nothing of the batch is kept, and it is read again from the
  offsets the store holds;
- killed after the store committed, before Kafka heard of it: the store's offsets are past the
  batch, and the intake resumes there;
- read twice all the same (a partition the store has no offset for yet, an instance that lost its
  partitions mid-batch): the store finds the record's provenance (topic, partition, offset) and
  does not log it again.

Only the sequencer's lease holder runs an intake (services/audit/log/sequencer.py), and every
batch it appends names the holder's epoch: once another replica took the lease the store refuses
the batch (LeaseLostError) and `run` ends with that error, so the holder stops at once.

A poison record never stops the log. One that cannot be read is an `unreadable` fact. A fact the
store refuses (PostgreSQL refuses a NUL character, for one) makes its batch fail while the store
answers: the batch is then appended one fact per transaction, and a fact refused
APPENDS_BEFORE_UNSTORABLE times so is kept as what the log keeps of an unreadable record: its
provenance and the problem, nothing it carried. A store that does not answer is retried with
backoff (one record at a time after ISOLATE_AFTER_FAILURES failures) and counts against no record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from opentelemetry import trace

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
from services.audit.log.lease import LeaseLostError
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore, Consumed
from shared.contracts.crypto.keys import MissingKeyError
from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.envelope import Headers
from shared.contracts.registry import Registry, UnknownOrganisationError, UnknownSourceError
from shared.contracts.topics import audited_topics_pattern
from shared.kafka_records import install as install_forgiving_record_parsing
from shared.plumbing.kafka import client_options
from shared.plumbing.logging import bind_correlation_id, get_logger
from shared.plumbing.metrics import (
    AUDIT_APPEND_SECONDS,
    AUDIT_APPENDS,
    AUDIT_LOG_SIZE,
    BATCH_RECORDS,
    BATCH_SECONDS,
    BATCHES,
    FAILURES_IN_A_ROW,
    RECEIPTS,
    CommitClock,
)
from shared.plumbing.settings import CommonSettings
from shared.plumbing.tracing import span
from shared.plumbing.transactional import (
    DEAD_AFTER_FAILURES,
    ISOLATE_AFTER_FAILURES,
    LAG_EVERY_SECONDS,
    UNREADY_AFTER_FAILURES,
    backoff_seconds,
    record_lag,
    record_span,
)

log = get_logger()
NAME = "audit"  # the loop's name in the processing metrics, beside signals' and consent's
APPENDS_BEFORE_UNSTORABLE = 3
GATHER_BYTES = 64 * 1024
UNFORESEEN = "the record could not be read"
UNSTORABLE = "the fact this record states could not be stored"

Batch = dict[TopicPartition, list[ConsumerRecord]]


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


def _traced() -> bool:
    """Whether spans are recorded (tracing configured, SC_OTLP_ENDPOINT): only then is a span per
    record worth its cost, tens of microseconds where thousands of records a second pass."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def consumed_by(records: Sequence[ConsumerRecord]) -> Consumed:
    """Per partition of `records`, the offset to read next once they are logged."""
    consumed: dict[tuple[str, int], int] = {}
    for record in records:
        partition = (record.topic, record.partition)
        consumed[partition] = max(consumed.get(partition, 0), record.offset + 1)
    return consumed


class _ResumeWhereTheStoreEnds(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, intake: AuditIntake) -> None:
        self._intake = intake

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Nothing to hand over: each batch's offsets are in the store with its facts."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._intake.resume(assigned)


class AuditIntake:
    """Owns the audit log's consumer; `run` loops until cancelled (the module docstring)."""

    def __init__(
        self,
        store: AuditStore,
        settings: CommonSettings,
        signed_by: SignatureCheck,
        sources: SourceLookup,
        *,
        max_batch: int = 500,
        gather_ms: int = 0,
        epoch: int | None = None,
    ) -> None:
        """`epoch`: the sequencer's lease epoch every append names (None: the only writer)."""
        self._store = store
        self._epoch = epoch
        self._settings = settings
        self._signed_by = signed_by
        self._sources = sources
        self._max_batch = max_batch
        self._gather_ms = gather_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._failures = 0
        self._isolating = False  # one record per transaction, to find the one the store refuses
        self._refused: dict[tuple[str, int, int], int] = {}  # appends the store refused, per record
        self._clock = CommitClock(NAME)
        self._lag_measured = 0.0

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("audit intake not started")
        return self._consumer

    @property
    def failures_in_a_row(self) -> int:
        return self._failures

    def _failed(self, failures: int) -> None:
        self._failures = failures
        FAILURES_IN_A_ROW.labels(NAME).set(failures)

    @property
    def alive(self) -> bool:
        """Not failing for good: a loop that keeps failing is better restarted (/healthz)."""
        return self._failures < DEAD_AFTER_FAILURES

    @property
    def ready(self) -> bool:
        """Assigned partitions, and not stuck on a batch that keeps failing."""
        assigned = self._consumer is not None and bool(self._consumer.assignment())
        return assigned and self._failures < UNREADY_AFTER_FAILURES

    async def start(self) -> None:
        install_forgiving_record_parsing()  # a header name that is not UTF-8 must not stop the log
        # aiokafka clients must be created inside the running event loop. Metadata refreshes
        # every 10 s, so the pattern subscription sees partner topics added later.
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._settings.topic(NAME),
            client_id="safety-chain-audit",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=10_000,
            # The broker holds a fetch until GATHER_BYTES are there or gather_ms passed: a few
            # signals' facts per poll at a low rate instead of a poll per transaction marker.
            fetch_min_bytes=GATHER_BYTES if self._gather_ms else 1,
            fetch_max_wait_ms=self._gather_ms or 500,
        )
        self._consumer.subscribe(
            pattern=audited_topics_pattern(self._settings.topic_prefix),
            listener=_ResumeWhereTheStoreEnds(self),
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def resume(self, partitions: set[TopicPartition]) -> None:
        """Seek each partition to the offset the store keeps for it (the module docstring)."""
        try:
            stored = await asyncio.to_thread(self._store.consumed_offsets)
        except Exception:
            # From Kafka's committed offsets, then: never ahead of the store's, and what is read
            # again is found by its provenance.
            log.exception("audit_resume_failed", partitions=len(partitions))
            return
        resumed = 0
        for partition in partitions:
            offset = stored.get((partition.topic, partition.partition))
            if offset is not None:
                self.consumer.seek(partition, offset)
                resumed += 1
        log.info("audit_resumed", partitions=len(partitions), from_the_store=resumed)

    async def run(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self._max_batch)
            except KafkaError:
                log.exception("fetch_failed", processor=NAME)
                self._failed(self._failures + 1)
                await asyncio.sleep(backoff_seconds(self._failures))
                continue
            await self._measure_lag()
            if not batch:
                continue
            try:
                if self._isolating:
                    await self.ingest_one_by_one(batch)
                else:
                    await self.ingest(batch)
            except LeaseLostError:
                raise  # another replica appends now: no retry, no refusal counted
            except Exception:
                self._failed(self._failures + 1)
                # A store that answers refused something in the batch: find it, one record at a
                # time. One that does not answer is down: the batch waits for it.
                self._isolating = self._failures >= ISOLATE_AFTER_FAILURES or (
                    await asyncio.to_thread(self._store.ping)
                )
                await asyncio.sleep(backoff_seconds(self._failures))  # then read the same records again
            else:
                self._failed(0)
                self._isolating = False

    async def ingest(self, batch: Batch) -> None:
        """The whole batch in one store transaction with its offsets; on failure it is rewound,
        to be read again."""
        records = [record for records in batch.values() for record in records]
        try:
            await self._append(records)
        except Exception:
            log.exception("audit_batch_failed", partitions=len(batch), records=len(records))
            self._rewind(batch)
            raise

    async def ingest_one_by_one(self, batch: Batch) -> None:
        """Each record of the batch in a transaction of its own, so a fact the store keeps
        refusing is found (and in the end kept as unstorable); any failure rewinds to the first
        record not appended."""
        pending = {partition: list(records) for partition, records in batch.items() if records}
        try:
            for records in pending.values():
                while records:
                    await self._append(records[:1], isolated=True)
                    records.pop(0)
        except Exception:
            log.exception("audit_record_failed")
            self._rewind(pending)
            raise

    async def _append(self, records: list[ConsumerRecord], isolated: bool = False) -> None:
        consumed = consumed_by(records)
        started = time.perf_counter()
        try:
            facts, stored, took = await asyncio.to_thread(self._facts_appended, records, consumed)
        except LeaseLostError:
            raise
        except Exception:
            BATCHES.labels(NAME, "aborted").inc()
            if isolated:
                await self._count_refusal(records[0])
            raise
        self._clock.committed()
        BATCHES.labels(NAME, "committed").inc()
        BATCH_RECORDS.labels(NAME).observe(len(records))
        BATCH_SECONDS.labels(NAME).observe(time.perf_counter() - started)
        AUDIT_APPEND_SECONDS.observe(took)  # every fact of the batch waited this long to be kept
        self._logged(facts, stored)
        await self._tell_kafka(consumed)

    def _facts_appended(
        self, records: list[ConsumerRecord], consumed: Consumed
    ) -> tuple[list[AuditFact], list[AuditRecord | None], float]:
        """In a worker thread: the batch's facts (the signature checks are its CPU), appended."""
        facts = [self._fact(record) for record in records]
        started = time.perf_counter()
        with span("audit.append", attributes={"db.operation.name": "append", "records": len(facts)}):
            stored = self._store.append_batch(facts, consumed, epoch=self._epoch)
        return facts, stored, time.perf_counter() - started

    def _fact(self, record: ConsumerRecord) -> AuditFact:
        topic, partition, offset = record.topic, record.partition, record.offset
        if self._refused.get((topic, partition, offset), 0) >= APPENDS_BEFORE_UNSTORABLE:
            # The store took other facts but keeps refusing this one: keep the record's
            # provenance, nothing it carried.
            return unreadable_fact(topic, partition, offset, [], UNSTORABLE)
        headers = list(record.headers or ())
        with record_span(record, self._settings.topic_prefix) if _traced() else contextlib.nullcontext():
            try:
                return fact_from_record(
                    topic,
                    partition,
                    offset,
                    headers,
                    record.value or b"",
                    self._signed_by,
                    self._settings.topic_prefix,
                    self._sources,
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
                return unreadable_fact(topic, partition, offset, headers, problem)

    async def _count_refusal(self, record: ConsumerRecord) -> None:
        """A refused append counts against the record only while the store answers."""
        if await asyncio.to_thread(self._store.ping):
            provenance = (record.topic, record.partition, record.offset)
            self._refused[provenance] = self._refused.get(provenance, 0) + 1

    def _logged(self, facts: list[AuditFact], stored: list[AuditRecord | None]) -> None:
        kinds: Counter[str] = Counter()
        for fact, record in zip(facts, stored, strict=True):
            kinds[append_kind(fact, record)] += 1
            self._refused.pop((fact.kafka_topic, fact.kafka_partition, fact.kafka_offset), None)
            if record is None:
                continue
            if record.role is Role.RECEIPT:
                RECEIPTS.labels(fact.source, (fact.decision or "").removeprefix("receipt-")).inc()
            bind_correlation_id(fact.correlation_id)
            log.info("audit_recorded", seq=record.seq, event_type=fact.event_type, signal_id=fact.signal_id)
        for kind, count in kinds.items():
            AUDIT_APPENDS.labels(kind).inc(count)
        newest = max((record.seq for record in stored if record is not None), default=None)
        if newest is not None:
            AUDIT_LOG_SIZE.set(newest)

    async def _tell_kafka(self, consumed: Consumed) -> None:
        """The store's offsets, committed to the group too (module docstring: only for Kafka's
        tooling); a partition revoked meanwhile refuses it, and that is fine."""
        offsets = {TopicPartition(topic, part): offset for (topic, part), offset in consumed.items()}
        try:
            await self.consumer.commit(offsets)
        except KafkaError as error:
            log.info("audit_offsets_not_committed_to_kafka", error=type(error).__name__)

    def _rewind(self, batch: Batch) -> None:
        # To the first record not appended. (Not seek_to_committed: aiokafka leaves the position
        # alone where nothing was committed yet, which would skip the batch.) A partition revoked
        # meanwhile resumes from the store's offset wherever it is assigned next.
        assigned = self.consumer.assignment()
        for partition, records in batch.items():
            if records and partition in assigned:
                self.consumer.seek(partition, records[0].offset)

    async def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_measured >= LAG_EVERY_SECONDS:
            self._lag_measured = now
            with contextlib.suppress(Exception):  # a rebalance in progress: next time
                await record_lag(self.consumer, NAME, self._settings.topic_prefix)
