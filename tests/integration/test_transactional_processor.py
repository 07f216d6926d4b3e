"""The consume-transform-produce mechanism itself, on the real broker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from devstack.kafka import ADMIN_PRINCIPAL, KafkaAccess
from shared.contracts.topics import TopicSpec
from shared.plumbing.kafka import client_options, ensure_topics
from shared.plumbing.record_writer import OutgoingRecord
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import UNREADY_AFTER_FAILURES, RecordSpans, TransactionalProcessor
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
