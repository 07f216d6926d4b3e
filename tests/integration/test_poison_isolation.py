"""A record whose transform keeps raising never stops the consume-transform-produce loop (real
broker): the batch is isolated one record per transaction, the poison record is dead-lettered
through the processor's callback, every other record is produced exactly once; errors that are
no verdict on a record (transient) are retried, never dead-lettered."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from devstack.kafka import ADMIN_PRINCIPAL, KafkaAccess
from shared.contracts.topics import TopicSpec
from shared.plumbing import transactional
from shared.plumbing.kafka import client_options, ensure_topics
from shared.plumbing.record_writer import OutgoingRecord
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import TransactionalProcessor
from tests.conftest import fresh_prefix
from tests.e2e.stack import read_all
from tests.polling import eventually_async

pytestmark = pytest.mark.kafka


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a moment apart instead of 1, 2, 4, 5 s: what is retried and what is dead-lettered
    does not depend on how long the processor waits in between (the schedule itself:
    tests/unit/test_transactional_recovery.py)."""
    monkeypatch.setattr(transactional, "backoff_seconds", lambda failures: 0.05)


IN = TopicSpec("in.v1", key="-", partitions=2)
OUT = TopicSpec("out.v1", key="-", partitions=1)
DEAD = TopicSpec("dead.v1", key="-", partitions=1)


def probe_settings(kafka: KafkaAccess) -> CommonSettings:
    """A processor of test topics on a fresh prefix, as the cluster's super user (no service
    principal may create or read test topics)."""
    return CommonSettings(**kafka.settings(ADMIN_PRINCIPAL), topic_prefix=fresh_prefix())


class StoreDownError(Exception):
    """Stands in for a store that is unreachable for a while."""


async def run_probe(
    settings: CommonSettings,
    values: list[bytes],
    transform_error: dict[bytes, list[BaseException]],
    expected_outputs: int,
    expected_dead: int,
) -> tuple[list[bytes], list[ConsumerRecord], TransactionalProcessor]:
    """Write `values` (keyed, so both partitions get some), run a processor whose transform
    raises the errors listed for a value (one per attempt, then succeeds; forever for b"poison"),
    and wait for the outputs and dead letters."""
    prefix = settings.topic_prefix
    await ensure_topics(settings, [IN, OUT, DEAD])
    attempts: dict[bytes, int] = {}

    def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        value = record.value or b""
        attempts[value] = attempts.get(value, 0) + 1
        if value == b"poison":
            raise KeyError("a bug no check foresaw")  # forever
        errors = transform_error.get(value, [])
        if attempts[value] <= len(errors):
            raise errors[attempts[value] - 1]
        return [OutgoingRecord(OUT.prefixed(prefix), b"k", value.upper(), [])]

    def dead_letter(record: ConsumerRecord, error: BaseException) -> list[OutgoingRecord]:
        where = f"{record.topic}:{record.partition}:{record.offset}:{type(error).__name__}"
        return [OutgoingRecord(DEAD.prefixed(prefix), b"k", where.encode(), [])]

    processor = TransactionalProcessor(
        settings,
        name="probe",
        topics=[IN.prefixed(prefix)],
        transactional_id="probe-0",
        transform=transform,
        dead_letter=dead_letter,
        transient=(StoreDownError,),
    )
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:
        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:
            for index, value in enumerate(values):
                await producer.send(IN.prefixed(prefix), value, key=str(index).encode())
            await producer.flush()
        finally:
            await producer.stop()

        async def all_handled() -> bool:
            outputs = await read_all(client_options(settings), OUT.prefixed(prefix))
            dead = await read_all(client_options(settings), DEAD.prefixed(prefix))
            return len(outputs) >= expected_outputs and len(dead) >= expected_dead and processor.ready

        await eventually_async(
            all_handled,
            what=f"{expected_outputs} outputs, {expected_dead} dead letters and the processor ready",
            timeout=90,
            interval=0.5,
        )
        await asyncio.sleep(1.0)  # anything produced twice would show by now
        outputs = await read_all(client_options(settings), OUT.prefixed(prefix))
        dead = await read_all(client_options(settings), DEAD.prefixed(prefix))
        assert not task.done()
        return [r.value or b"" for r in outputs], dead, processor
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await processor.stop()


async def test_a_record_whose_transform_keeps_raising_is_dead_lettered_and_the_rest_flows_once(
    kafka_access: KafkaAccess,
) -> None:
    settings = probe_settings(kafka_access)
    valid = [f"v{i}".encode() for i in range(12)]
    values = [*valid[:5], b"poison", *valid[5:]]

    outputs, dead, processor = await run_probe(settings, values, {}, len(valid), 1)

    # Every valid record once, in spite of the poison record among them in the same batch.
    assert sorted(outputs) == sorted(value.upper() for value in valid)
    # The poison record is dead-lettered once, named by where it was read, its value not echoed.
    assert len(dead) == 1 and processor.dead_lettered == 1
    letter = (dead[0].value or b"").decode()
    topic, partition, offset, error = letter.rsplit(":", 3)
    assert topic == IN.prefixed(settings.topic_prefix) and error == "KeyError"
    poison = [
        r
        for r in await read_all(client_options(settings), IN.prefixed(settings.topic_prefix))
        if r.value == b"poison"
    ]
    assert (poison[0].partition, poison[0].offset) == (int(partition), int(offset))
    assert b"poison" not in (dead[0].value or b"")
    assert processor.ready


async def test_a_transient_error_is_retried_and_never_dead_lettered(kafka_access: KafkaAccess) -> None:
    settings = probe_settings(kafka_access)
    valid = [f"v{i}".encode() for i in range(6)]
    # One record meets a store that is down four times in a row (so also while isolated), a
    # second one a Kafka-level hiccup once: both are retried until they go through.
    errors: dict[bytes, list[BaseException]] = {
        b"v2": [StoreDownError("down")] * 4,
        b"v4": [ConnectionError("reset")],
    }

    outputs, dead, processor = await run_probe(settings, valid, errors, len(valid), 0)

    assert sorted(outputs) == sorted(value.upper() for value in valid)
    assert dead == [] and processor.dead_lettered == 0
