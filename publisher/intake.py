"""Build and send signed, sealed intake records (signals.intake.v1)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from shared.contracts.events import SIGNAL_SUBMITTED_HEADERS, SIGNAL_SUBMITTED_TYPE, SealedPayload
from shared.crypto.sealing import b64encode, intake_context, seal
from shared.crypto.signing import sign_record
from shared.envelope import Envelope, Headers
from shared.registry import Registry
from shared.settings import CommonSettings
from shared.sources import parse_source
from shared.topics import SIGNALS_INTAKE

SUBMITTED_TYPE = SIGNAL_SUBMITTED_TYPE
INTAKE_RECIPIENT = "signals"


def intake_record(
    signal_json: bytes,
    source: str,
    signing_key: Ed25519PrivateKey,
    signals_key: X25519PublicKey,
    correlation_id: str | None = None,
    extensions: dict[str, str] | None = None,
) -> tuple[bytes, Headers]:
    """The value and headers of one intake record: the signal sealed to the signals service,
    the whole record signed with `signing_key`. `source` is the publishing municipality's
    CloudEvents source, urn:nld:oin:<its OIN>:systeem:<its system> (`Registry.source`); the
    signals service accepts the record only from the organisation that source names (ValueError
    here for a malformed one). The signal's bytes are sealed exactly as given. `extensions` may
    hold only the ones declared in SIGNAL_SUBMITTED_HEADERS (ValueError)."""
    parse_source(source)
    envelope = Envelope(
        source=source,
        type=SUBMITTED_TYPE,
        extensions=SIGNAL_SUBMITTED_HEADERS.values("intake record", **(extensions or {})),
        **({"correlation_id": correlation_id} if correlation_id else {}),
    )
    sealed = seal(signals_key, signal_json, intake_context(envelope.id, INTAKE_RECIPIENT))
    value = SealedPayload(recipient=INTAKE_RECIPIENT, ciphertext=b64encode(sealed)).model_dump_json().encode()
    return value, sign_record(signing_key, value, envelope.to_headers())


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
        self._source = source or Registry.load(CommonSettings().config_dir).source(municipality)
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
