"""A processor whose producer was fenced gets a new one, also while the broker is still away,
and stops only when it keeps being fenced (another live process with its id)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced

import shared.plumbing.transactional as transactional
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import FENCES_BEFORE_GIVING_UP, TransactionalProcessor


class _Producer:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


def _processor(monkeypatch: pytest.MonkeyPatch, refusals: int) -> tuple[TransactionalProcessor, list[Any]]:
    processor = TransactionalProcessor(
        CommonSettings(), name="probe", topics=["in"], transactional_id="probe-0", transform=lambda r: []
    )
    started: list[Any] = []

    async def started_producer() -> Any:
        if len(started) < refusals:
            started.append(None)
            raise KafkaConnectionError("the broker is restarting")
        started.append(_Producer())
        return started[-1]

    monkeypatch.setattr(processor, "_started_producer", started_producer)
    monkeypatch.setattr(transactional, "backoff_seconds", lambda failures: 0.0)
    return processor, started


async def test_a_fenced_producer_is_replaced_once_the_broker_takes_a_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, started = _processor(monkeypatch, refusals=3)
    fenced = _Producer()
    processor._producer = fenced
    await processor._recover_from_fencing()
    assert fenced.stopped
    assert started[:3] == [None, None, None]  # refused while the broker was away, tried again
    assert processor.producer is started[3]


async def test_fenced_again_and_again_it_stops_rather_than_fence_another_process_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, _ = _processor(monkeypatch, refusals=0)
    for _ in range(FENCES_BEFORE_GIVING_UP - 1):
        await processor._recover_from_fencing()
    with pytest.raises(ProducerFenced):
        await processor._recover_from_fencing()


def test_a_batch_that_keeps_failing_is_retried_ever_less_often_up_to_a_bound() -> None:
    assert [transactional.backoff_seconds(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
