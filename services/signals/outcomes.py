"""Where the HTTP intake waits for the pipeline's verdict on the record it submitted.

Any replica's intake processor may decide the record, since the group shares the intake
partitions out. Each verdict record (accepted or rejected) names the intake record it decides
(the signed `ce_intakerecord`), and every replica follows both verdict topics from their end
(read_committed: only committed verdicts) and posts what it reads to its board under that name;
the HTTP handler that wrote the record waits there. The replica that decided it also posts
right after its commit (kafka_intake.BatchOutcomes), which is usually first. So a caller gets
a committed verdict wherever its request landed, and 503 verdict-pending only when there is no
verdict within SC_VERDICT_TIMEOUT_SECONDS (ADR 0006, 0022). Outcomes nobody waits for (Kafka
intake records, other replicas' callers) are forgotten oldest first beyond _MAX_PENDING.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from services.signals.intake import Outcome
from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import SignalAccepted, SignalRejected
from shared.contracts.topics import SIGNALS_ACCEPTED, SIGNALS_REJECTED
from shared.plumbing.kafka import client_options, topic_partitions
from shared.plumbing.logging import get_logger
from shared.plumbing.settings import CommonSettings

log = get_logger()
_MAX_PENDING = 10_000


class OutcomeBoard:
    def __init__(self) -> None:
        self._futures: OrderedDict[str, asyncio.Future[Outcome]] = OrderedDict()

    def _future(self, provenance: str) -> asyncio.Future[Outcome]:
        future = self._futures.get(provenance)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[provenance] = future
            while len(self._futures) > _MAX_PENDING:  # outcomes nobody waits for: forget the oldest
                self._futures.popitem(last=False)
        return future

    def post(self, provenance: str, outcome: Outcome) -> None:
        future = self._future(provenance)
        if not future.done():
            future.set_result(outcome)

    async def wait(self, provenance: str, seconds: float) -> Outcome | None:
        future = self._future(provenance)
        try:
            return await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            return None
        finally:
            self._futures.pop(provenance, None)


_VERDICTS: dict[str, type[SignalAccepted] | type[SignalRejected]] = {
    SIGNALS_ACCEPTED.name: SignalAccepted,
    SIGNALS_REJECTED.name: SignalRejected,
}


def verdict_of(
    record: ConsumerRecord, prefix: str, signals_key: Ed25519PublicKey
) -> tuple[str, Outcome] | None:
    """The intake record a verdict record decides, and the verdict; None for a record that
    names no intake record (consent's dead letters, refusals before intake) or that this
    service did not sign as a verdict of its type (logged; audit keeps the record)."""
    headers = list(record.headers)
    if not any(name == "ce_intakerecord" for name, _ in headers):
        return None
    kind = _VERDICTS[record.topic.removeprefix(prefix)]
    try:
        verify_record([signals_key], record.value or b"", headers)
        envelope = Envelope.from_headers(headers)
        if envelope.type != kind.event_type:
            raise ValueError(f"{envelope.type} on {record.topic}")
        event = kind.model_validate_json(record.value or b"")
    except SignatureError as error:
        log.error("verdict_untrusted", topic=record.topic, offset=record.offset, reason=error.reason)
        return None
    except (ValueError, ValidationError) as error:
        log.error("verdict_unreadable", topic=record.topic, offset=record.offset, error=type(error).__name__)
        return None
    provenance = envelope.extensions["intakerecord"]
    if isinstance(event, SignalAccepted):
        return provenance, Outcome([], accepted=event)
    return provenance, Outcome([], rejected=event)


class VerdictFollower:
    """Reads every committed verdict from the moment it starts and posts it to the board."""

    def __init__(self, settings: CommonSettings, board: OutcomeBoard, signals_key: Ed25519PublicKey) -> None:
        self._settings = settings
        self._board = board
        self._signals_key = signals_key
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Positioned at the verdict topics' ends when this returns: start it before the HTTP
        intake writes anything, so no verdict of this replica's callers is missed."""
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=None,
            client_id=f"safety-chain-signals-verdicts-{self._settings.instance_id}",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self._consumer.start()
        partitions = [
            partition
            for spec in (SIGNALS_ACCEPTED, SIGNALS_REJECTED)
            for partition in await topic_partitions(
                self._consumer, spec.prefixed(self._settings.topic_prefix)
            )
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self._consumer.position(partition)  # resolved now, not at the first poll

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self) -> None:
        assert self._consumer is not None, "start() first"
        prefix = self._settings.topic_prefix
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            except KafkaError:
                log.exception("verdicts_fetch_failed")
                await asyncio.sleep(1.0)
                continue
            for records in batch.values():
                for record in records:
                    found = verdict_of(record, prefix, self._signals_key)
                    if found is not None:
                        self._board.post(*found)
