"""The anchor: a transactional two-hop aiokafka relay on the same broker, in the same run.

Three topics under the run's prefix (`relay.in`, `relay.mid`, `relay.out`, 3 partitions like
every topic of the chain). Two hops, each its own process like a service: a consumer in a
group (read_committed, no auto commit) and a transactional, idempotent producer (acks=all),
as shared/plumbing/transactional.py builds them. Per poll (`getmany`, at most `max_batch`
records): begin a transaction, send every record on unchanged (value, key, headers), add the
consumed offsets with send_offsets_to_transaction, commit. Nothing is computed per record:
this is what the chain's Kafka pattern costs on this broker and these cores, the ceiling the
chain's rate is read against.

The clock starts when the first input record is produced (the hops are connected and
assigned by then) and stops when this process has read the last record on `relay.out`
(read_committed), as the chain's clock runs from its first publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.synchronize
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPICS = ("relay.in", "relay.mid", "relay.out")
PARTITIONS = 3

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


@dataclass(frozen=True)
class Hop:
    options: dict[str, Any]
    source: str
    target: str
    group: str
    transactional_id: str
    max_batch: int
    linger_ms: int
    count: int  # records to relay before stopping
    seconds: float  # and at most this long


async def _hop(hop: Hop, ready: multiprocessing.synchronize.Event) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        hop.source,
        **hop.options,
        group_id=hop.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        **hop.options,
        transactional_id=hop.transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=hop.linger_ms,
    )
    await producer.start()
    await consumer.start()
    deadline = time.monotonic() + hop.seconds
    try:
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=100)  # joins the group
        ready.set()
        relayed = transactions = 0
        cpu_before, began = time.process_time(), time.monotonic()
        while relayed < hop.count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=hop.max_batch)
            if not batch:
                continue
            offsets = {}
            async with producer.transaction():
                for partition, records in batch.items():
                    for record in records:
                        await producer.send(
                            hop.target, record.value, key=record.key, headers=list(record.headers)
                        )
                    offsets[partition] = records[-1].offset + 1
                    relayed += len(records)
                await producer.send_offsets_to_transaction(offsets, hop.group)
            transactions += 1
        return {
            "relayed": relayed,
            "transactions": transactions,
            "cpu_s": time.process_time() - cpu_before,
            "seconds": time.monotonic() - began,
        }
    finally:
        await consumer.stop()
        await producer.stop()


def run_hop(hop: Hop, ready: multiprocessing.synchronize.Event, report: Any) -> None:
    """A hop process's whole life; what it did goes to the `report` queue."""
    report.put(asyncio.run(_hop(hop, ready)))


async def create_topics(options: dict[str, Any], prefix: str, wait_seconds: float = 30.0) -> None:
    """Create the three topics and wait until every partition has a leader in sync (a produce
    right after creation was refused once with NotEnoughReplicas, and retried)."""
    names = [f"{prefix}{name}" for name in TOPICS]
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names], timeout_ms=30_000)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            partitions = [p for topic in described for p in topic.get("partitions", ())]
            if len(partitions) == PARTITIONS * len(names) and all(
                p.get("leader", -1) >= 0 and p.get("isr") for p in partitions
            ):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def count_until(
    options: dict[str, Any], topic: str, count: int, deadline: float, started: asyncio.Event
) -> float | None:
    """Read `topic` (read_committed) from its start until `count` records were seen; the
    monotonic time of the last one, or None when `deadline` passed first."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        while not (partitions := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                return None
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        started.set()
        seen = 0
        while seen < count:
            if time.monotonic() > deadline:
                return None
            batch = await consumer.getmany(timeout_ms=100)
            seen += sum(len(records) for records in batch.values())
        return time.monotonic()
    finally:
        await consumer.stop()


async def produce(options: dict[str, Any], topic: str, records: Sequence[Record], linger_ms: int) -> None:
    """The input, as a pipelining publisher writes it (idempotent, acks=all)."""
    producer = AIOKafkaProducer(**options, enable_idempotence=True, acks="all", linger_ms=linger_ms)
    await producer.start()
    try:
        pending = [
            await producer.send(topic, value, key=key, headers=headers) for key, value, headers in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class RelayRun:
    records: int
    started: float  # monotonic: the first produce
    produced: float  # every input acknowledged
    finished: float | None  # the last record on relay.out, None when not in time
    hops: tuple[dict[str, float], ...]  # each hop's own account: relayed, transactions, cpu_s

    @property
    def seconds(self) -> float | None:
        return (self.finished - self.started) if self.finished is not None else None

    def as_dict(self) -> dict[str, Any]:
        seconds = self.seconds
        transactions = sum(hop.get("transactions", 0) for hop in self.hops)
        cpu = sum(hop.get("cpu_s", 0.0) for hop in self.hops)
        return {
            "records": self.records,
            "produce_s": self.produced - self.started,
            "all_relayed_s": seconds,
            "records_per_s": self.records / seconds if seconds else None,
            "hops": list(self.hops),
            "records_per_transaction": 2 * self.records / transactions if transactions else None,
            "hop_cpu_ms_per_record": 1e3 * cpu / self.records if self.records and self.hops else None,
        }


async def run_relay(
    options: dict[str, Any],
    prefix: str,
    records: Sequence[Record],
    *,
    max_batch: int,
    linger_ms: int,
    seconds: float,
) -> RelayRun:
    """Create the topics, start both hops (processes), produce `records` into relay.in and
    wait (at most `seconds`) until they are all on relay.out."""
    await create_topics(options, prefix)
    context = multiprocessing.get_context("spawn")
    hops = [
        Hop(
            options,
            f"{prefix}{source}",
            f"{prefix}{target}",
            f"{prefix}relay.hop{n}",
            f"{prefix}relay.hop{n}",
            max_batch,
            linger_ms,
            len(records),
            seconds,
        )
        for n, (source, target) in enumerate(itertools.pairwise(TOPICS), start=1)
    ]
    readies = [context.Event() for _ in hops]
    reports = context.Queue()
    processes = [
        context.Process(target=run_hop, args=(hop, ready, reports), name=f"relay-hop{n}", daemon=True)
        for n, (hop, ready) in enumerate(zip(hops, readies, strict=True), start=1)
    ]
    deadline = time.monotonic() + seconds
    try:
        for process in processes:
            process.start()
        for ready in readies:
            while not ready.is_set():
                if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
                    raise RuntimeError("the relay's hops did not join their groups")
                await asyncio.sleep(0.05)
        watching = asyncio.Event()
        reader = asyncio.create_task(
            count_until(options, f"{prefix}{TOPICS[-1]}", len(records), deadline, watching)
        )
        await asyncio.wait_for(watching.wait(), max(1.0, deadline - time.monotonic()))
        started = time.monotonic()
        await produce(options, f"{prefix}{TOPICS[0]}", records, linger_ms)
        produced = time.monotonic()
        finished = await reader
        accounts = []
        for _ in processes:
            with contextlib.suppress(queue.Empty):
                accounts.append(await asyncio.to_thread(reports.get, True, 10.0))
        return RelayRun(len(records), started, produced, finished, tuple(accounts))
    finally:
        for process in processes:  # each ends by itself once it relayed them all, or at the deadline
            await asyncio.to_thread(process.join, max(0.1, min(10.0, deadline - time.monotonic())))
            if process.is_alive():
                process.terminate()
                await asyncio.to_thread(process.join, 5)
