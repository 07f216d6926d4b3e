"""Consume-transform-produce with exactly-once semantics, on aiokafka.

Per batch: poll the input topics (read_committed), transform each record into output records,
then produce all outputs *and* the consumed offsets in one Kafka transaction. A crash at any
point aborts the open transaction; the restarted instance (same transactional id, so a zombie
of it is fenced) resumes from the last committed offsets. Readers of the outputs use
isolation.level=read_committed, so nobody sees the outputs of an aborted batch.

A batch costs little per record: it is transformed in one hop off the event loop (one worker
thread call per batch; each record still in a span of its own), its outputs are sent back to
back (a short linger and large producer batches make them a few produce requests) and their
acknowledgements awaited together, while the processor's `before_commit` (a store's flush)
runs beside them; the transaction commits only once both are done. The consumed offsets are
added first, so their round trips to the coordinators overlap the transform.

A poison record never stops the loop (defence in depth, besides each transform turning bad
input into a dead letter itself): when a batch failed ISOLATE_AFTER_FAILURES times in a row, it
is processed again one record per transaction, so one record that keeps failing cannot hold
back the others; a record whose transform raises (a bug, an input no check foresaw) is then
dead-lettered through the processor's `dead_letter` callback, in a transaction with its offset,
and logged with its exception. Kafka errors, I/O errors and the processor's own `transient`
errors (a store that is down, state not caught up yet) are no verdict on a record: they are
retried with backoff, as is everything when a processor has no `dead_letter` callback.

Replicas share the input partitions through the consumer group (range assignment: equal
partition numbers of co-partitioned topics go to one member). aiokafka commits offsets in a
transaction without the group's generation (no KIP-447), so two rules keep a partition's
records from being processed twice when it moves: a rebalance takes a partition away only
after the batch in flight committed or aborted (the revocation waits for it, and a batch read
before a rebalance is dropped, not processed), and a replica that stops heartbeating (paused,
cut off) has its open transaction aborted by the broker before the group hands its partitions
to another (`handover_is_safe`: the transaction times out, and the broker aborts it, well
within the session timeout). A replica fenced that way starts a new producer and goes on.

FastStream does not expose transactions with send_offsets_to_transaction, hence plain aiokafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NoReturn

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, ProducerFenced, RecordTooLargeError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from shared.kafka_records import install as install_forgiving_record_parsing
from shared.plumbing.kafka import client_options
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import (
    BATCH_RECORDS,
    BATCH_SECONDS,
    BATCHES,
    CONSUMER_LAG,
    DEAD_LETTERED,
    FAILURES_IN_A_ROW,
    CommitClock,
    Tally,
)
from shared.plumbing.record_writer import OutgoingRecord
from shared.plumbing.settings import CommonSettings
from shared.plumbing.tracing import parent_of, span, tracer

log = get_logger()
UNREADY_AFTER_FAILURES = 5
DEAD_AFTER_FAILURES = 30
"""A loop whose batches failed this often in a row (about two and a half minutes of retries)
reports itself dead at /healthz, so the orchestrator restarts the process."""
LAG_EVERY_SECONDS = 5.0
ISOLATE_AFTER_FAILURES = 2
"""A batch that failed this often in a row is processed one record per transaction."""
POISON_KAFKA_ERRORS: tuple[type[Exception], ...] = (MessageSizeTooLargeError, RecordTooLargeError)
"""Kafka errors one record causes (an output too large to produce), not the cluster."""
MAX_BACKOFF_SECONDS = 5.0
LINGER_MS = 5
"""How long the transactional producer lets a produce request fill. A batch's sends are enqueued
back to back, so this rarely delays anything; it keeps a batch from leaving as one request per
record whenever the loop yields in between."""
RETRY_BACKOFF_MS = 20
"""How soon the transactional producer repeats a request the broker asked to retry. The first
request of a transaction right after the previous one committed is often told
CONCURRENT_TRANSACTIONS (the coordinator is still writing the markers, a few ms); aiokafka
waits 100 ms by default before asking again, except for a transaction's first partitions."""
PRODUCER_BATCH_BYTES = 512 * 1024
"""The producer's batch per partition: a transaction's outputs for one partition fit in one
(aiokafka's default, 16 KiB, is about eight accepted signals)."""
TRANSACTION_TIMEOUT_MS = 10_000
"""The broker aborts (and fences) a transaction open longer: a batch takes well under a second."""
BROKER_ABORT_INTERVAL_MS = 2_000
"""The cluster's transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s by default):
how late after its timeout the broker aborts a transaction. devstack's broker and the Strimzi
cluster (deploy/k8s) set it."""
SESSION_TIMEOUT_MS = 20_000
HEARTBEAT_INTERVAL_MS = 3_000
FENCES_BEFORE_GIVING_UP = 3
"""Fenced this often within FENCE_WINDOW_SECONDS: another live process has this transactional id
(a duplicate instance id), so this one stops rather than fence it back forever."""
FENCE_WINDOW_SECONDS = 300.0


def handover_is_safe(
    transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    abort_interval_ms: int = BROKER_ABORT_INTERVAL_MS,
    session_timeout_ms: int = SESSION_TIMEOUT_MS,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
) -> bool:
    """Whether a replica that stopped heartbeating has its open transaction aborted before the
    group can give its partitions to another: its last heartbeat came at most one interval
    before the transaction began, the group waits a session timeout after that heartbeat, and
    the broker aborts the transaction at most its timeout plus one abort interval after it
    began. Otherwise the paused replica could wake and commit a batch its successor redoes."""
    return transaction_timeout_ms + abort_interval_ms < session_timeout_ms - heartbeat_interval_ms


def backoff_seconds(failures_in_a_row: int) -> float:
    """1, 2, 4, then MAX_BACKOFF_SECONDS between retries of a batch that keeps failing."""
    return min(2.0 ** (failures_in_a_row - 1), MAX_BACKOFF_SECONDS)


def _span_arguments(record: ConsumerRecord, prefix: str) -> dict[str, Any]:
    """Name, kind, trace and attributes of the span of processing `record`."""
    # Any header may be missing, empty, doubled or not bytes on a poison record: then no parent.
    found = [value for name, value in record.headers or () if name == "ce_traceparent"]
    traceparent = (
        found[0].decode("ascii", "replace") if len(found) == 1 and isinstance(found[0], bytes) else None
    )
    parts = traceparent.split("-") if traceparent else []
    return {
        "name": f"process {record.topic.removeprefix(prefix)}",
        "kind": SpanKind.CONSUMER,
        "correlation_id": parts[1] if len(parts) == 4 else None,
        "traceparent": traceparent,
        "attributes": {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic.removeprefix(prefix),
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        },
    }


def record_span(record: ConsumerRecord, prefix: str) -> AbstractContextManager[Any]:
    """The span of processing one record, in the trace its `ce_traceparent` names."""
    arguments = _span_arguments(record, prefix)
    return span(arguments.pop("name"), **arguments)


class RecordSpans:
    """The processing span of each record of a batch, open while the batch is transformed, so
    a transform that works on the whole batch in steps can act in each record's span (its store
    calls and the records written for it become that span's children)."""

    def __init__(self, records: Sequence[ConsumerRecord], prefix: str) -> None:
        self._spans: list[Span] = []
        for record in records:
            arguments = _span_arguments(record, prefix)
            correlation_id, traceparent = arguments.pop("correlation_id"), arguments.pop("traceparent")
            context = parent_of(correlation_id, traceparent) if correlation_id else None
            self._spans.append(tracer().start_span(arguments.pop("name"), context=context, **arguments))

    @contextmanager
    def within(self, index: int) -> Iterator[Span]:
        """Record `index`'s span as the current one (an exception is recorded on it)."""
        with trace.use_span(self._spans[index], end_on_exit=False) as current:
            yield current

    def end(self) -> None:
        for record_span_ in self._spans:
            record_span_.end()


async def record_lag(consumer: AIOKafkaConsumer, name: str, prefix: str) -> None:
    """Per topic, how many committed records lie beyond the consumer's position (the fetcher's
    last stable offsets: the broker is not asked), as the consumer-lag gauge."""
    behind: dict[str, int] = {}
    for partition in consumer.assignment():
        end = consumer.last_stable_offset(partition) or consumer.highwater(partition)
        if end is None:
            continue
        position = await consumer.position(partition)
        behind[partition.topic] = behind.get(partition.topic, 0) + max(end - position, 0)
    for topic, records in behind.items():
        CONSUMER_LAG.labels(name, topic.removeprefix(prefix)).set(records)


Transform = Callable[[ConsumerRecord], list[OutgoingRecord]]
"""One record's outputs. Runs off the event loop (in the batch's worker thread), in the
record's span."""
BatchTransform = Callable[[Sequence[ConsumerRecord], RecordSpans], list[list[OutgoingRecord]]]
"""Every record's outputs, in the records' order, for a transform that works on the batch as a
whole (e.g. one store lookup for all its records). Runs off the event loop, in one worker
thread call; `RecordSpans.within(i)` puts its work for record i in that record's span."""
DeadLetter = Callable[[ConsumerRecord, BaseException], list[OutgoingRecord]]
"""(a record whose processing failed, the error) -> the records that dead-letter it: a reason
code (processing_failed) and where the record was read, never its value or the error's text
(which may quote the value)."""


def _record_by_record(transform: Transform) -> BatchTransform:
    """A batch transform that calls `transform` on each record, in the record's span."""

    def each(records: Sequence[ConsumerRecord], spans: RecordSpans) -> list[list[OutgoingRecord]]:
        outputs = []
        for index, record in enumerate(records):
            with spans.within(index):
                outputs.append(transform(record))
        return outputs

    return each


class PoisonRecordError(Exception):
    """Processing this one record failed for a reason that lies in the record."""

    def __init__(self, record: ConsumerRecord, error: BaseException) -> None:
        super().__init__(f"{record.topic}[{record.partition}]@{record.offset}: {type(error).__name__}")
        self.record = record
        self.error = error


class _HandOverAfterTheBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: TransactionalProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._processor._partitions_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


class TransactionalProcessor:
    """Owns one consumer and one transactional producer; `run` loops until cancelled.

    It transforms with `transform` (record by record) or `batch_transform` (the batch as a
    whole): exactly one of them. Either must not raise for bad input: it turns a poison record
    into a dead letter. An exception from it (or from Kafka) aborts the batch, which is then
    read again; how a record that keeps failing is isolated and dead-lettered: the module
    docstring (isolated, a batch transform is given one record at a time).
    """

    def __init__(
        self,
        settings: CommonSettings,
        *,
        name: str,
        topics: list[str],
        transactional_id: str,
        transform: Transform | None = None,
        batch_transform: BatchTransform | None = None,
        max_batch: int = 100,
        before_batch: Callable[[], Awaitable[None]] | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        after_abort: Callable[[], None] | None = None,
        after_commit: Callable[[], None] | None = None,
        dead_letter: DeadLetter | None = None,
        transient: tuple[type[BaseException], ...] = (),
        tally: Tally | None = None,
    ) -> None:
        """`before_batch` runs before each batch is transformed (e.g. to catch up state);
        `before_commit` after it is transformed, inside its transaction, while its outputs are
        on their way (e.g. to make side state durable: the transaction commits only after it
        returned, and aborts if it raises); `after_abort` when it aborted;
        `after_commit` once its transaction committed (the only moment to tell anyone that
        the batch's outputs exist). `dead_letter` turns a record whose transform keeps raising
        into its dead letter; without it such a record is retried forever (and the processor
        turns unready). `transient` names the exceptions of the transform that are never a
        record's fault (Kafka and I/O errors never are). `tally`: counts the transform adds,
        applied when its transaction commits (shared/plumbing/metrics.py)."""
        self._settings = settings
        self._name = name
        self._topics = topics
        self._group_id = settings.topic(name)
        self._transactional_id = settings.topic(transactional_id)
        if batch_transform is None:
            if transform is None:
                raise TypeError("give a transform or a batch_transform")
            batch_transform = _record_by_record(transform)
        elif transform is not None:
            raise TypeError("give a transform or a batch_transform, not both")
        self._transform = batch_transform
        self._max_batch = max_batch
        self._before_batch = before_batch
        self._before_commit = before_commit
        self._after_abort = after_abort
        self._after_commit = after_commit
        self._dead_letter = dead_letter
        self._transient = (KafkaError, OSError, *transient)
        self.tally = tally or Tally()
        self._failures = 0
        self._clock = CommitClock(name)
        self._lag_measured = 0.0
        self.dead_lettered = 0  # records the loop dead-lettered itself
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._batch_lock = asyncio.Lock()  # a rebalance waits for the batch in flight
        self._rebalances = 0
        self._fenced_at: list[float] = []

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
    def _failures_in_a_row(self) -> int:
        return self._failures

    @_failures_in_a_row.setter
    def _failures_in_a_row(self, failures: int) -> None:
        self._failures = failures
        FAILURES_IN_A_ROW.labels(self._name).set(failures)

    @property
    def alive(self) -> bool:
        """Not failing for good: a loop that keeps failing is better restarted (/healthz)."""
        return self._failures < DEAD_AFTER_FAILURES

    @property
    def ready(self) -> bool:
        """Assigned partitions, and not stuck: a batch that keeps failing makes it unready, so an
        orchestrator notices (and restarts) a processor that retries forever."""
        assigned = self._consumer is not None and bool(self._consumer.assignment())
        return assigned and self._failures_in_a_row < UNREADY_AFTER_FAILURES

    async def start(self) -> None:
        install_forgiving_record_parsing()
        # aiokafka clients must be created inside the running event loop.
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._group_id,
            client_id=f"safety-chain-{self._transactional_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )
        self._consumer.subscribe(self._topics, listener=_HandOverAfterTheBatch(self))
        self._producer = await self._started_producer()
        await self._consumer.start()

    async def _started_producer(self) -> AIOKafkaProducer:
        """A transactional producer under this processor's id: starting it aborts whatever an
        earlier producer with the id left open, and fences that producer."""
        producer = AIOKafkaProducer(
            **client_options(self._settings),
            client_id=f"safety-chain-{self._transactional_id}",
            transactional_id=self._transactional_id,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            enable_idempotence=True,
            acks="all",
            linger_ms=LINGER_MS,
            max_batch_size=PRODUCER_BATCH_BYTES,
            retry_backoff_ms=RETRY_BACKOFF_MS,
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    async def _partitions_revoked(self) -> None:
        """The group takes partitions away: only between batches, and a batch read before it
        is then dropped (`run`)."""
        async with self._batch_lock:
            self._rebalances += 1

    def _producer_failed_for_good(self) -> bool:
        """Whether the producer can run no more transactions. A fence surfaces as whichever
        call met it first (a send refused "not in transaction", an invalid state transition),
        so the producer's own state is asked; aiokafka has no public way to ask it."""
        manager = getattr(self._producer, "_txn_manager", None)
        return manager is not None and bool(manager.is_fatal_error())

    async def _recover_from_fencing(self) -> None:
        """A newer producer epoch took this transactional id: the broker aborted a transaction
        that outlived TRANSACTION_TIMEOUT_MS (a broker restart, a long pause), or another live
        process runs with this id. The first is recovered with a new producer; the second would
        fence back and forth, so after a few fences in a row this processor stops (`alive`
        turns false through the raised error)."""
        now = time.monotonic()
        self._fenced_at = [at for at in self._fenced_at if now - at < FENCE_WINDOW_SECONDS] + [now]
        if len(self._fenced_at) >= FENCES_BEFORE_GIVING_UP:
            log.error("producer_fenced_repeatedly", processor=self._name, fences=len(self._fenced_at))
            raise ProducerFenced()
        log.warning("producer_fenced", processor=self._name, fences=len(self._fenced_at))
        if self._producer is not None:
            with contextlib.suppress(Exception):  # it is done for; whatever it still says
                await self._producer.stop()
            self._producer = None
        while self._producer is None:
            try:
                self._producer = await self._started_producer()
            except (KafkaError, OSError):
                # The broker may be restarting (the fence came from its recovery): try again.
                log.warning("producer_not_started", processor=self._name, exc_info=True)
                self._failures_in_a_row += 1
                await asyncio.sleep(backoff_seconds(self._failures_in_a_row))

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    def _is_poison(self, error: BaseException) -> bool:
        """Whether `error`, raised for one record, lies in the record rather than around it."""
        return isinstance(error, POISON_KAFKA_ERRORS) or not isinstance(error, self._transient)

    def _transformed(self, records: list[ConsumerRecord]) -> list[OutgoingRecord]:
        """The outputs of `records`, in order (in a worker thread: the whole batch in one hop)."""
        spans = RecordSpans(records, self._settings.topic_prefix)
        try:
            outputs = self._transform(records, spans)
        finally:
            spans.end()
        if len(outputs) != len(records):
            raise RuntimeError(f"{self._name}: {len(outputs)} outputs for {len(records)} records")
        return [out for record_outputs in outputs for out in record_outputs]

    def _raise_attributed(self, error: Exception, records: list[ConsumerRecord], isolated: bool) -> NoReturn:
        """Raise `error` of transforming or producing `records`; isolated (one record), as a
        PoisonRecordError when it lies in the record."""
        if isolated and self._is_poison(error):
            raise PoisonRecordError(records[0], error) from error
        raise error

    async def _produce(
        self, records: list[ConsumerRecord], offsets: dict[TopicPartition, int], isolated: bool
    ) -> None:
        """Transform `records` and send their outputs and offsets, in the open transaction, and
        run `before_commit`; all of it is done when this returns. The offsets go first: their
        round trips to the coordinators overlap the transform. The outputs go back to back and
        `before_commit` runs while they travel."""
        offsets_sent = asyncio.ensure_future(
            self.producer.send_offsets_to_transaction(offsets, self._group_id)
        )
        durable: asyncio.Future[None] | None = None
        try:
            try:
                outputs = await asyncio.to_thread(self._transformed, records)
                # Nothing here waits for the broker: they leave as few produce requests.
                sent = [
                    await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                    for out in outputs
                ]
            except Exception as error:
                self._raise_attributed(error, records, isolated)
            if self._before_commit is not None:
                durable = asyncio.ensure_future(self._before_commit())
            await offsets_sent
            try:
                await asyncio.gather(*sent)
            except Exception as error:
                self._raise_attributed(error, records, isolated)
            if durable is not None:
                await durable
        except BaseException:
            # The transaction aborts next, and the batch may be forgotten (after_abort) only
            # once `before_commit` is done with it; the first error is the one raised.
            for pending in (offsets_sent, durable):
                if pending is not None:
                    await asyncio.wait([pending])
                    if not pending.cancelled():
                        pending.exception()
            raise

    async def _commit(self, records: list[ConsumerRecord], isolated: bool = False) -> None:
        """One transaction: the outputs of `records` and their offsets (isolated: one record,
        whose error, if it lies in the record, is raised as PoisonRecordError); on any error it
        aborts, after_abort runs and the error is raised."""
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        started = time.perf_counter()
        try:
            async with self.producer.transaction():
                await self._produce(records, offsets, isolated)
        except Exception:
            BATCHES.labels(self._name, "aborted").inc()
            self.tally.abort()
            if self._after_abort is not None:
                self._after_abort()
            raise
        BATCHES.labels(self._name, "committed").inc()
        BATCH_RECORDS.labels(self._name).observe(len(records))
        BATCH_SECONDS.labels(self._name).observe(time.perf_counter() - started)
        self._clock.committed()
        self.tally.commit()
        if self._after_commit is not None:
            self._after_commit()

    async def _commit_dead_letter(self, poison: PoisonRecordError) -> None:
        """The dead letter of a record that cannot be processed, with its offset: one transaction."""
        assert self._dead_letter is not None
        record = poison.record
        async with self.producer.transaction():
            for out in self._dead_letter(record, poison.error):
                await self.producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            await self.producer.send_offsets_to_transaction(
                {TopicPartition(record.topic, record.partition): record.offset + 1}, self._group_id
            )
        self._clock.committed()
        self.dead_lettered += 1
        DEAD_LETTERED.labels(self._name).inc()

    def _rewind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        # To the batch's first records. (Not seek_to_committed: aiokafka leaves the position
        # alone where nothing was committed yet, which would skip the batch.) A partition the
        # group took away meanwhile starts from its committed offset wherever it goes next.
        assigned = self.consumer.assignment()
        for partition, records in batch.items():
            if records and partition in assigned:
                self.consumer.seek(partition, records[0].offset)

    async def process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """The whole batch in one transaction; on failure it is rewound, to be read again."""
        try:
            if self._before_batch is not None:
                await self._before_batch()
            await self._commit([record for records in batch.values() for record in records])
        except Exception:
            # The transaction was aborted: nothing of this batch is visible. Re-read it.
            log.exception("batch_aborted", processor=self._name, partitions=len(batch))
            self._rewind(batch)
            raise

    async def process_one_by_one(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Each record of the batch in a transaction of its own, so the one that fails is found;
        one whose error lies in it is dead-lettered (when the processor can), the rest go on.
        Any other failure rewinds to the first record not committed, to be read again."""
        pending = {partition: list(records) for partition, records in batch.items() if records}
        try:
            if self._before_batch is not None:
                await self._before_batch()
            for records in pending.values():
                while records:
                    try:
                        await self._commit(records[:1], isolated=True)
                    except PoisonRecordError as poison:
                        if self._dead_letter is None:
                            raise
                        log.error(
                            "record_dead_lettered",
                            processor=self._name,
                            topic=poison.record.topic,
                            partition=poison.record.partition,
                            offset=poison.record.offset,
                            error=type(poison.error).__name__,
                            exc_info=poison.error,
                        )
                        await self._commit_dead_letter(poison)
                    records.pop(0)
        except Exception:
            log.exception("record_aborted", processor=self._name)
            self._rewind(pending)
            raise

    async def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_measured >= LAG_EVERY_SECONDS:
            self._lag_measured = now
            await record_lag(self.consumer, self._name, self._settings.topic_prefix)

    async def run(self) -> None:
        try:
            await self._loop()
        except Exception:
            log.exception("processor_stopped", processor=self._name)  # /healthz says so too
            raise

    async def _loop(self) -> None:
        while True:
            rebalances = self._rebalances
            try:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self._max_batch)
            except KafkaError:
                log.exception("fetch_failed", processor=self._name)
                self._failures_in_a_row += 1
                await asyncio.sleep(backoff_seconds(self._failures_in_a_row))
                continue
            await self._measure_lag()
            if not batch:
                continue
            try:
                async with self._batch_lock:
                    if self._rebalances != rebalances:
                        # The group moved partitions while this batch was read: it may hold
                        # records of partitions no longer this replica's. Read it again from
                        # its start, where it still is this replica's.
                        self._rewind(batch)
                        continue
                    if self._failures_in_a_row >= ISOLATE_AFTER_FAILURES:
                        await self.process_one_by_one(batch)
                    else:
                        await self.process_batch(batch)
            except Exception as error:
                if isinstance(error, ProducerFenced) or self._producer_failed_for_good():
                    await self._recover_from_fencing()
                    continue
                self._failures_in_a_row += 1
                await asyncio.sleep(backoff_seconds(self._failures_in_a_row))  # then retry the same batch
            else:
                self._failures_in_a_row = 0
