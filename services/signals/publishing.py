"""Kafka adapter of the intake: publishes accepted and rejected events via FastStream."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.contracts.events import Event, SignalAccepted, SignalRejected
from shared.envelope import Envelope
from shared.settings import CommonSettings
from shared.topics import SIGNALS_ACCEPTED, SIGNALS_REJECTED


class KafkaEventPublisher:
    def __init__(self, broker: KafkaBroker, settings: CommonSettings) -> None:
        self._broker = broker
        self._accepted_topic = SIGNALS_ACCEPTED.prefixed(settings.topic_prefix)
        self._rejected_topic = SIGNALS_REJECTED.prefixed(settings.topic_prefix)

    async def _publish(self, topic: str, key: str, event: Event, envelope: Envelope) -> None:
        await self._broker.publish(
            event.to_bytes(),
            topic,
            key=key.encode(),
            headers={name: value.decode() for name, value in envelope.to_headers()},
            correlation_id=envelope.correlation_id,
        )

    async def accepted(self, event: SignalAccepted, envelope: Envelope) -> None:
        # Keyed by subject pseudonym: every signal of one subject lands in one partition, in order.
        await self._publish(self._accepted_topic, event.subject_pseudonym, event, envelope)

    async def rejected(self, event: SignalRejected, envelope: Envelope) -> None:
        key = str(event.signal_id) if event.signal_id else str(event.rejection_id)
        await self._publish(self._rejected_topic, key, event, envelope)
