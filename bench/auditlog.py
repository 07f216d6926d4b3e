"""When the audit log holds a run's facts: what audit must log, read from Kafka, against what
its store holds, read from its database (read-only).

What audit must log is exact: every committed record on a topic the audit service reads (its
own subscription pattern, `audited_topics_pattern`, read_committed as it reads them) becomes
one fact, flagged or not. `AuditedTopics` reads those topics from their start and files each
record's provenance (topic, partition, offset) under the signal it belongs to: its
`ce_signalid` header (accepted, rejected, decisions) or, for a delivery, its `ce_deliveryid`
mapped back to the signal (the bench knows every partner's delivery id of its signals).

What the log holds: `AuditStoreWatch` polls the audit store's database read-only (SQLite with
`mode=ro`; PostgreSQL in read-only transactions, when the replicas share it), reading only the
rows appended since its last poll, and notes when it first saw
each provenance (`kafka_topic`, `kafka_partition`, `kafka_offset`: the store's idempotency key,
one row per fact). So a signal is in the log when every record of it on the audited topics is
a row there, and a run is when every signal of it is, nothing counted from outside the run.
The moment is the poll that saw the row (polls every 50 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import summary
from shared.contracts.events import ExchangeDecided, SignalAccepted, SignalDelivered, SignalRejected
from shared.contracts.topics import audited_topics_pattern

Provenance = tuple[str, int, int]  # topic, partition, offset

ACCEPTED, DECIDED, DELIVERED, REJECTED = (
    SignalAccepted.event_type,
    ExchangeDecided.event_type,
    SignalDelivered.event_type,
    SignalRejected.event_type,
)


def _header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    for key, value in headers:
        if key == name and isinstance(value, bytes):
            return value.decode(errors="replace")
    return None


@dataclass
class AuditedTopics:
    """Every committed record on the topics the audit log covers, filed by signal."""

    options: dict[str, Any]  # how to connect (KafkaAccess.client_options)
    prefix: str
    signal_of_delivery: dict[str, str]  # any partner's delivery id -> signal id
    facts: dict[str, dict[Provenance, str]] = field(default_factory=dict)  # signal -> provenance: type
    unattributed: dict[Provenance, str] = field(default_factory=dict)  # no signal of ours
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)

    async def start(self, wait_seconds: float = 30.0) -> None:
        consumer = AIOKafkaConsumer(
            **self.options, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        self._consumer = consumer
        pattern = re.compile(audited_topics_pattern(self.prefix))
        deadline = time.monotonic() + wait_seconds
        while True:
            await consumer._client.force_metadata_update()
            topics = [t for t in consumer._client.cluster.topics() if pattern.fullmatch(t)]
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if topics and all(consumer.partitions_for_topic(t) for t in topics):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the audited topics do not exist")
            await asyncio.sleep(0.2)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)

    async def run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    provenance = (record.topic, record.partition, record.offset)
                    headers = record.headers or ()
                    event_type = _header(headers, "ce_type") or "?"
                    signal_id = _header(headers, "ce_signalid")
                    if signal_id is None and (delivery := _header(headers, "ce_deliveryid")):
                        signal_id = self.signal_of_delivery.get(delivery)
                    if signal_id is None:
                        self.unattributed[provenance] = event_type
                    else:
                        self.facts.setdefault(signal_id, {})[provenance] = event_type

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def provenances(self, signal_ids: Iterable[str]) -> dict[Provenance, str]:
        return {p: kind for s in signal_ids for p, kind in self.facts.get(s, {}).items()}

    def unfinished(self, signal_ids: Iterable[str], to_deliver: set[str]) -> set[str]:
        """The signals whose records are not all written yet: no verdict of signals (accepted
        or rejected), an accepted one without consent's decisions (one transaction writes all
        of a signal's decisions), or one to deliver without its delivery."""
        waiting = set()
        for signal_id in signal_ids:
            kinds = set(self.facts.get(signal_id, {}).values())
            if REJECTED in kinds:
                continue
            decided = ACCEPTED in kinds and DECIDED in kinds
            if not decided or (signal_id in to_deliver and DELIVERED not in kinds):
                waiting.add(signal_id)
        return waiting


_NEW_ROWS = (
    "SELECT seq, kafka_topic, kafka_partition, kafka_offset FROM audit_log_records"
    " WHERE seq > {} ORDER BY seq LIMIT 50000"
)


@dataclass
class AuditStoreWatch:
    """Polls the audit store's database (read-only) for rows appended since the last poll;
    `held` maps each row's provenance to (monotonic, wall-clock) time of the poll that first
    saw it. `source`: the SQLite file, or the SQLAlchemy URL of a PostgreSQL store;
    `on_backend` is told the pid of each PostgreSQL backend that serves the polls (its CPU is
    the benchmark's reading, not the services' work)."""

    source: Path | str
    interval: float = 0.05
    on_backend: Callable[[int], None] | None = None
    held: dict[Provenance, tuple[float, float]] = field(default_factory=dict)
    error: str | None = None  # the last reason a poll failed, if it did
    _last_seq: int = 0
    _connection: sqlite3.Connection | None = field(default=None, init=False, repr=False)
    _engine: sqlalchemy.Engine | None = field(default=None, init=False, repr=False)

    def _rows(self) -> list[tuple[Any, ...]]:
        if isinstance(self.source, str):
            if self._engine is None:
                # every poll its own read-only transaction: it sees what was committed before it
                self._engine = sqlalchemy.create_engine(
                    self.source,
                    pool_size=1,
                    connect_args={"options": "-c default_transaction_read_only=on"},
                )
            with self._engine.connect() as connection:
                info = connection.connection.info  # kept with the pooled DBAPI connection
                if "backend_pid" not in info:
                    info["backend_pid"] = connection.execute(
                        sqlalchemy.text("SELECT pg_backend_pid()")
                    ).scalar()
                    if self.on_backend is not None:
                        self.on_backend(int(info["backend_pid"]))
                result = connection.execute(
                    sqlalchemy.text(_NEW_ROWS.format(":seq")), {"seq": self._last_seq}
                )
                return [tuple(row) for row in result]
        if self._connection is None:
            if not self.source.exists():
                raise FileNotFoundError(f"{self.source} does not exist (yet)")
            self._connection = sqlite3.connect(
                f"file:{self.source}?mode=ro", uri=True, check_same_thread=False, timeout=1.0
            )
        return self._connection.execute(_NEW_ROWS.format("?"), (self._last_seq,)).fetchall()

    def lease_holder(self) -> str | None:
        """The SC_INSTANCE_ID of the replica holding the sequencer's lease (PostgreSQL store),
        None when there is no lease or it cannot be read."""
        if self._engine is None:
            return None
        try:
            with self._engine.connect() as connection:
                holder = connection.execute(sqlalchemy.text("SELECT holder FROM audit_log_lease")).scalar()
        except sqlalchemy.exc.SQLAlchemyError:
            return None
        return str(holder) if holder is not None else None

    def poll(self) -> int:
        """Read the rows appended since the last poll; how many there were."""
        try:
            rows = self._rows()
        except (sqlite3.Error, sqlalchemy.exc.SQLAlchemyError, OSError) as error:
            self.error = f"{type(error).__name__}: {error}"
            return 0
        now = (time.monotonic(), time.time())
        for seq, topic, partition, offset in rows:
            self.held.setdefault((topic, int(partition), int(offset)), now)
            self._last_seq = max(self._last_seq, int(seq))
        return len(rows)

    @property
    def size(self) -> int:
        """The highest sequence number seen: the log's size."""
        return self._last_seq

    async def run(self) -> None:
        while True:
            rows = await asyncio.to_thread(self.poll)
            if rows < 50000:
                await asyncio.sleep(self.interval)

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass(frozen=True)
class AuditOutcome:
    """How long the audit log took to hold a set of signals' facts."""

    signals: int
    expected: dict[Provenance, str]  # every fact of the signals: provenance -> event type
    held_at: dict[Provenance, tuple[float, float]]  # of those the log holds: when (monotonic, wall)
    unfinished_signals: int  # signals whose records were not all on Kafka by the deadline
    signal_held_at: dict[str, float]  # signal -> wall time the log held its last fact
    store_error: str | None

    @property
    def complete(self) -> bool:
        return not self.unfinished_signals and len(self.held_at) == len(self.expected)

    @property
    def last_held(self) -> float | None:
        """Monotonic time the last fact was seen in the log; None when not all were."""
        return max(t for t, _ in self.held_at.values()) if self.complete and self.held_at else None

    def as_dict(self, start: float, delivered: float | None = None) -> dict[str, Any]:
        """The figures, with times from `start` (monotonic); `delivered`: when the last
        delivery was seen (for the gap between the exchange and its log)."""
        last = self.last_held
        kinds = Counter(self.expected.values())
        return {
            "facts_expected": len(self.expected),
            "facts_held": len(self.held_at),
            "complete": self.complete,
            "unfinished_signals": self.unfinished_signals,
            "facts_per_signal": len(self.expected) / self.signals if self.signals else None,
            "facts_per_signal_by_type": {
                kind.rsplit(".", 2)[-2] if kind.count(".") >= 2 else kind: n / self.signals
                for kind, n in sorted(kinds.items())
            }
            if self.signals
            else {},
            "all_held_s": (last - start) if last is not None else None,
            "facts_per_s": len(self.expected) / (last - start) if last is not None else None,
            "signals_per_s": self.signals / (last - start) if last is not None else None,
            "after_last_delivery_s": (last - delivered) if last is not None and delivered else None,
            "store_error": self.store_error,
        }


async def wait_until_held(
    kafka: AuditedTopics,
    store: AuditStoreWatch,
    signal_ids: set[str],
    to_deliver: set[str],
    deadline: float,
    settle: float = 1.0,
    on_held: Callable[[], None] | None = None,
) -> AuditOutcome:
    """Wait (until `deadline`, monotonic) until every record of `signal_ids` is on Kafka and
    the audit log holds each of them; then `settle` seconds more, to see that no record of
    them was still on its way. The times are those at which the rows were first seen, so the
    settling does not count. `on_held` is called each time all are seen held (e.g. to sample
    CPU time right then: the last call is the one that counts)."""
    confirmed_at: float | None = None
    while True:
        unfinished = kafka.unfinished(signal_ids, to_deliver)
        expected = kafka.provenances(signal_ids)
        all_held = not unfinished and all(p in store.held for p in expected)
        now = time.monotonic()
        if all_held and confirmed_at is None:
            confirmed_at = now + settle
            if on_held is not None:
                on_held()
        elif not all_held:
            confirmed_at = None
        if (confirmed_at is not None and now >= confirmed_at) or now > deadline:
            break
        await asyncio.sleep(0.05)
    held = {p: store.held[p] for p in expected if p in store.held}
    per_signal: dict[str, float] = {}
    for signal_id in signal_ids - unfinished:
        times = [store.held.get(p) for p in kafka.facts.get(signal_id, {})]
        if times and all(t is not None for t in times):
            per_signal[signal_id] = max(t[1] for t in times if t is not None)
    return AuditOutcome(len(signal_ids), expected, held, len(unfinished), per_signal, store.error)


def held_latencies_ms(outcome: AuditOutcome, intake_times: dict[str, float]) -> dict[str, float]:
    """Per signal: its intake record's time (wall clock, s) -> the log held its last fact."""
    return summary(
        [(held - intake_times[s]) * 1e3 for s, held in outcome.signal_held_at.items() if s in intake_times]
    )
