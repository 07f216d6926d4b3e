"""The consume-transform-produce mechanism itself, on the real broker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from functools import partial

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import ProducerFenced

from devstack.kafka import ADMIN_PRINCIPAL, KafkaAccess
from shared.contracts.topics import TopicSpec
from shared.plumbing.kafka import client_options, ensure_topics
from shared.plumbing.record_writer import OutgoingRecord
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import (
    FENCES_BEFORE_GIVING_UP,
    UNREADY_AFTER_FAILURES,
    RecordSpans,
    TransactionalProcessor,
    Transform,
)
from tests.conftest import fresh_prefix
from tests.e2e.stack import read_all
from tests.polling import eventually_async

pytestmark = pytest.mark.kafka

IN, OUT = TopicSpec("in.v1", key="-", partitions=1), TopicSpec("out.v1", key="-", partitions=1)


async def test_a_batch_that_keeps_failing_makes_the_processor_unready_until_it_succeeds(
    kafka_access: KafkaAccess,
) -> None:
    # the mechanism alone, on topics of its own: as the cluster's admin, outside the topic table
    settings = CommonSettings(**kafka_access.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())
    await ensure_topics(settings, [IN, OUT])
    broken = True

    def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        if broken:
            raise RuntimeError("a bug in the transform")
        return [OutgoingRecord(OUT.prefixed(settings.topic_prefix), b"k", (record.value or b"").upper(), [])]

    processor = TransactionalProcessor(
        settings,
        name="probe",
        topics=[IN.prefixed(settings.topic_prefix)],
        transactional_id="probe-0",
        transform=transform,
    )
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:
        # One record arrives; the transform fails on it again and again.
        producer = AIOKafkaProducer(**client_options(settings))
        await producer.start()
        await producer.send_and_wait(IN.prefixed(settings.topic_prefix), b"hello")
        await producer.stop()

        async def ready() -> bool:
            return processor.ready

        async def unready() -> bool:
            return not processor.ready

        await eventually_async(ready, what="the processor ready", timeout=60, interval=0.2)
        await eventually_async(unready, what="the processor unready after failures", timeout=60, interval=0.2)
        # Nothing of the failed attempts is visible downstream, and the record was not skipped.
        assert await read_all(client_options(settings), OUT.prefixed(settings.topic_prefix)) == []

        # Once the cause is gone, the record goes through exactly once and it is ready again.
        broken = False
        await eventually_async(
            lambda: read_all(client_options(settings), OUT.prefixed(settings.topic_prefix)),
            what="the record on the output topic",
            timeout=60,
            interval=0.2,
        )
        assert [
            r.value for r in await read_all(client_options(settings), OUT.prefixed(settings.topic_prefix))
        ] == [b"HELLO"]
        assert processor.ready
        assert UNREADY_AFTER_FAILURES > 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await processor.stop()


async def test_a_batch_is_transformed_whole_off_the_event_loop_and_produced_once(
    kafka_access: KafkaAccess,
) -> None:
    settings = CommonSettings(**kafka_access.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())
    await ensure_topics(settings, [IN, OUT])
    values = [f"v{i}".encode() for i in range(10)]
    # The records are there before the processor starts: its first poll takes them all.
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    for value in values:
        await producer.send(IN.prefixed(settings.topic_prefix), value)
    await producer.stop()
    calls: list[tuple[int, bool]] = []  # per call: how many records, whether on the loop's thread
    loop_thread = threading.current_thread()

    def batch_transform(records: Sequence[ConsumerRecord], spans: RecordSpans) -> list[list[OutgoingRecord]]:
        calls.append((len(records), threading.current_thread() is loop_thread))
        outputs = []
        for index, record in enumerate(records):
            with spans.within(index):
                outputs.append(
                    [
                        OutgoingRecord(
                            OUT.prefixed(settings.topic_prefix), b"k", (record.value or b"").upper(), []
                        )
                    ]
                )
        return outputs

    processor = TransactionalProcessor(
        settings,
        name="probe",
        topics=[IN.prefixed(settings.topic_prefix)],
        transactional_id="probe-0",
        batch_transform=batch_transform,
    )
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:

        async def produced() -> list[bytes] | None:
            found = await read_all(client_options(settings), OUT.prefixed(settings.topic_prefix))
            return [r.value or b"" for r in found] if len(found) >= len(values) else None

        outputs = await eventually_async(produced, what="every output", timeout=60, interval=0.2)
        await asyncio.sleep(1.0)  # anything produced twice would show by now
        # Every record once, in order; the whole batch in one call, in a worker thread.
        assert await produced() == [value.upper() for value in values] == outputs
        assert calls == [(len(values), False)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await processor.stop()


def _upper_to(out: TopicSpec, prefix: str, pause: float = 0.0) -> Transform:
    def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        if pause:
            time.sleep(pause)  # in the batch's worker thread: a batch in flight while the group moves
        return [OutgoingRecord(out.prefixed(prefix), record.key, (record.value or b"").upper(), [])]

    return transform


async def _running(processors: list[TransactionalProcessor]) -> list[asyncio.Task[None]]:
    for processor in processors:
        await processor.start()
    return [asyncio.create_task(processor.run()) for processor in processors]


async def _stopped(processors: list[TransactionalProcessor], tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for processor in processors:
        await processor.stop()


async def test_replicas_share_the_partitions_and_a_rebalance_mid_batch_loses_and_repeats_nothing(
    kafka_access: KafkaAccess,
) -> None:
    settings = CommonSettings(**kafka_access.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())
    source, sink = TopicSpec("in.v1", key="-", partitions=6), TopicSpec("out.v1", key="-", partitions=6)
    await ensure_topics(settings, [source, sink])
    prefix = settings.topic_prefix

    def replica(instance: int) -> TransactionalProcessor:
        return TransactionalProcessor(
            settings,
            name="probe",
            topics=[source.prefixed(prefix)],
            transactional_id=f"probe-{instance}",
            transform=_upper_to(sink, prefix, pause=0.02),
            max_batch=20,
        )

    keys = [f"subject-{n}".encode() for n in range(12)]
    sent = [(keys[n % len(keys)], f"v{n:04d}".encode()) for n in range(600)]
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    first, second, third = replica(0), replica(1), replica(2)
    tasks = await _running([first])
    try:
        for number, (key, value) in enumerate(sent):
            await producer.send(source.prefixed(prefix), value, key=key)
            if number == 150:  # replicas join and one leaves while batches are in flight
                tasks += await _running([second])
            if number == 300:
                tasks += await _running([third])
            if number == 450:
                await _stopped([first], tasks[:1])
            await asyncio.sleep(0.002)
        await producer.flush()

        async def everything() -> list[ConsumerRecord] | None:
            found = await read_all(client_options(settings), sink.prefixed(prefix))
            return found if len(found) >= len(sent) else None

        await eventually_async(everything, what="every record processed", timeout=120, interval=0.5)
        await asyncio.sleep(2.0)  # anything processed twice would show by now
        out = await read_all(client_options(settings), sink.prefixed(prefix))
        assert sorted(r.value or b"" for r in out) == sorted(value.upper() for _, value in sent)
        for key in keys:  # one key's records keep their order
            assert [r.value for r in out if r.key == key] == [v.upper() for k, v in sent if k == key]
        assert second.consumer.assignment() and third.consumer.assignment()  # both took a share
    finally:
        await producer.stop()
        await _stopped([second, third], tasks[1:])


async def test_co_partitioned_topics_go_to_one_replica_partition_by_partition(
    kafka_access: KafkaAccess,
) -> None:
    settings = CommonSettings(**kafka_access.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())
    accepted, erased = TopicSpec("a.v1", key="-", partitions=4), TopicSpec("e.v1", key="-", partitions=4)
    sink = TopicSpec("out.v1", key="-", partitions=1)
    await ensure_topics(settings, [accepted, erased, sink])
    prefix = settings.topic_prefix
    replicas = [
        TransactionalProcessor(
            settings,
            name="probe",
            topics=[accepted.prefixed(prefix), erased.prefixed(prefix)],
            transactional_id=f"probe-{n}",
            transform=_upper_to(sink, prefix),
        )
        for n in range(2)
    ]
    tasks = await _running(replicas)
    try:

        async def shared_out() -> list[set[TopicPartition]] | None:
            assigned = [set(replica.consumer.assignment()) for replica in replicas]
            return assigned if all(assigned) and sum(map(len, assigned)) == 8 else None

        for assigned in await eventually_async(shared_out, what="both replicas assigned", timeout=60):
            numbers = {
                topic: {tp.partition for tp in assigned if tp.topic == topic}
                for topic in (accepted.prefixed(prefix), erased.prefixed(prefix))
            }
            # a subject's accepted signals and its erasure notices meet at one replica
            assert numbers[accepted.prefixed(prefix)] == numbers[erased.prefixed(prefix)] != set()
    finally:
        await _stopped(replicas, tasks)


async def test_a_fenced_replica_starts_a_new_producer_and_one_fenced_again_and_again_stops(
    kafka_access: KafkaAccess,
) -> None:
    settings = CommonSettings(**kafka_access.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())
    await ensure_topics(settings, [IN, OUT])
    prefix = settings.topic_prefix
    processor = TransactionalProcessor(
        settings,
        name="probe",
        topics=[IN.prefixed(prefix)],
        transactional_id="probe-0",
        transform=_upper_to(OUT, prefix),
    )
    [task] = await _running([processor])
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:

        async def fence() -> None:
            # another producer with the processor's transactional id: the broker bumps the epoch
            rival = AIOKafkaProducer(**client_options(settings), transactional_id=settings.topic("probe-0"))
            await rival.start()
            await rival.stop()

        async def outputs(count: int) -> list[bytes] | None:
            found = [r.value or b"" for r in await read_all(client_options(settings), OUT.prefixed(prefix))]
            return found if len(found) >= count else None

        for number in range(FENCES_BEFORE_GIVING_UP - 1):
            await fence()
            await producer.send_and_wait(IN.prefixed(prefix), f"after fence {number}".encode())
            await eventually_async(partial(outputs, number + 1), what="processed after the fence", timeout=60)
        assert await outputs(0) == [f"AFTER FENCE {n}".encode() for n in range(FENCES_BEFORE_GIVING_UP - 1)]
        assert not task.done()

        await fence()  # once too often within the window: a duplicate instance, it stops
        await producer.send_and_wait(IN.prefixed(prefix), b"one more")

        async def stopped() -> bool:
            return task.done()

        await eventually_async(stopped, what="the processor stopped", timeout=60)
        assert isinstance(task.exception(), ProducerFenced)
    finally:
        await producer.stop()
        await _stopped([processor], [task])
