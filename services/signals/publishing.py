"""Kafka adapter of the HTTP side of the signals service (FastStream producer).

The intake pipeline's own outputs are produced transactionally by the intake processor;
this gateway produces what the HTTP side writes directly: intake records it submits on behalf
of a caller, dead letters of requests refused before they reach the intake topic, and the
records of an erasure (those two signed by the record writer).
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.contracts.emitted import Outgoing
from shared.contracts.envelope import Headers
from shared.contracts.topics import SIGNALS_INTAKE
from shared.plumbing.record_writer import RecordWriter


class KafkaGateway:
    def __init__(self, broker: KafkaBroker, writer: RecordWriter, topic_prefix: str) -> None:
        self._broker = broker
        self._writer = writer
        self._intake_topic = SIGNALS_INTAKE.prefixed(topic_prefix)

    async def publish(self, outgoing: Outgoing) -> None:
        """Write `outgoing`'s signed record; returns once the cluster holds it (acks=all)."""
        record = self._writer.record(outgoing)
        await self._broker.publish(
            record.value,
            record.topic,
            key=record.key,
            headers={name: value.decode() for name, value in record.headers},
        )

    async def submit(self, key: str, value: bytes, headers: Headers) -> str:
        """Write an intake record; returns its provenance ("<topic>:<partition>:<offset>")."""
        metadata = await self._broker.publish(
            value,
            self._intake_topic,
            key=key.encode(),
            headers={name: header.decode() for name, header in headers},
        )
        return f"{metadata.topic}:{metadata.partition}:{metadata.offset}"
