"""Send signed, sealed intake records (signals.intake.v1) from a municipal system."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.topics import SIGNALS_INTAKE


class IntakePublisher:
    """Publishes signals of one municipality to signals.intake.v1 (idempotent producer)."""

    def __init__(
        self,
        municipality: str,
        signing_key: Ed25519PrivateKey,
        signals_key: X25519PublicKey,
        kafka_options: dict[str, Any],
        topic_prefix: str = "",
        source: str | None = None,
    ) -> None:
        """`source`: the municipality's CloudEvents source; by default the one the registry
        (organisations.yaml in the configured config dir) gives it."""
        self._source = source or Registry.configured().source(municipality)
        self._signing_key = signing_key
        self._signals_key = signals_key
        self._kafka_options = kafka_options
        self._topic = SIGNALS_INTAKE.prefixed(topic_prefix)

    async def publish(self, signals: list[dict[str, Any]]) -> None:
        """Send every signal, then wait until the broker has acknowledged all of them.

        Sends are pipelined (the idempotent producer keeps their order and writes each once);
        an exception means some may not have been written: publish them again, the signals
        service accepts each signal id once.
        """
        producer = AIOKafkaProducer(**self._kafka_options, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            pending = []
            for signal in signals:
                value, headers = intake_record(
                    json.dumps(signal).encode(), self._source, self._signing_key, self._signals_key
                )
                key = str(signal.get("signal_id", "")).encode()
                pending.append(await producer.send(self._topic, value, key=key, headers=headers))
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
