"""Every kind of bad input, over Kafka and HTTP, interleaved with valid signals.

Each bad record gets its reason code on signals.rejected.v1 and an audit record; every valid
signal arrives; the service keeps running.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.sources import source_urn
from tests.e2e.stack import CONFIG_DIR, Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

Record = tuple[bytes, Headers]


def send(stack: Stack, records: list[Record]) -> None:
    async def produce() -> None:
        producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
        await producer.start()
        try:
            for value, headers in records:
                await producer.send_and_wait(stack.topic("signals.intake.v1"), value, headers=headers)
        finally:
            await producer.stop()

    asyncio.run(produce())


class Publisher:
    """Builds intake records as a municipal system (or an attacker) would."""

    def __init__(self, stack: Stack) -> None:
        self.keys = KeyRing(stack.keys_dir, generate_missing=True)
        self.signals_key = self.keys.x25519_public("signals")
        self.registry = Registry.load(CONFIG_DIR)

    def signed(
        self, signal: dict[str, Any] | bytes, publisher: str = "gm0363", signer: str | None = None
    ) -> Record:
        raw = signal if isinstance(signal, bytes) else json.dumps(signal).encode()
        return intake_record(
            raw, self.source(publisher), self.keys.ed25519_private(signer or publisher), self.signals_key
        )

    def source(self, publisher: str) -> str:
        """The publisher's CloudEvents source; for one the registry does not know, a well-formed
        source of an OIN nobody holds."""
        if publisher in self.registry.all_ids():
            return self.registry.source(publisher)
        return source_urn("99999999000009999000", "safety-chain-publisher")

    def replayed(self, signal: dict[str, Any]) -> Record:
        value, headers = self.signed(signal)
        old = (datetime.now(UTC) - timedelta(days=2)).isoformat().encode()
        retimed = [(k, old if k == "ce_time" else v) for k, v in headers]
        return value, sign_record(self.keys.ed25519_private("gm0363"), value, retimed)

    def in_clear(self, signal: dict[str, Any]) -> Record:
        """Signed, but not sealed: the BSN would travel in clear."""
        raw = json.dumps(signal).encode()
        headers = Envelope(
            source=self.source("gm0363"), type="nl.safetychain.signal.submitted.v1"
        ).to_headers()
        return raw, sign_record(self.keys.ed25519_private("gm0363"), raw, headers)

    def unsigned(self, signal: dict[str, Any]) -> Record:
        value, headers = self.signed(signal)
        return value, [(k, v) for k, v in headers if not k.startswith("ce_signature")]

    def badly_signed(self, signal: dict[str, Any]) -> Record:
        value, headers = self.signed(signal)
        return value.replace(b'"ciphertext":"', b'"ciphertext":"AAAA'), headers


def test_bad_records_are_rejected_with_their_reasons_and_every_valid_signal_arrives(
    stack: Stack,
) -> None:
    publisher = Publisher(stack)
    valid: list[str] = []

    def valid_signal() -> dict[str, Any]:
        signal = domestic_violence_signal(signal_id=str(uuid.uuid4()))
        valid.append(signal["signal_id"])
        return signal

    duplicate = valid_signal()
    too_long = domestic_violence_signal(summary="x" * 5000)
    oversized = domestic_violence_signal(attributes={"children_present": True, "note": "y" * 70_000})
    bad_kafka: dict[str, Record] = {
        "malformed_json": publisher.signed(b'{"municipality": "gm0363",'),
        "schema_violation": publisher.signed(domestic_violence_signal(severity="enorm")),
        "unknown_category": publisher.signed(domestic_violence_signal(category="graffiti")),
        "unknown_municipality": publisher.signed(
            domestic_violence_signal(), publisher="gm9999", signer="gm0363"
        ),
        "invalid_bsn": publisher.signed(
            domestic_violence_signal(subject={"kind": "person", "bsn": "123456789"})
        ),
        "invalid_kvk": publisher.signed(
            domestic_violence_signal(category="ondermijning", attributes={"kvk_number": "12AB"})
        ),
        "invalid_postcode": publisher.signed(
            domestic_violence_signal(subject={"kind": "address", "postcode": "0000 A", "house_number": 3})
        ),
        "summary_too_long": publisher.signed(too_long),
        "oversized": publisher.signed(oversized),
        "missing_signature": publisher.unsigned(domestic_violence_signal()),
        "bad_signature": publisher.badly_signed(domestic_violence_signal()),
        "wrong_publisher": publisher.signed(domestic_violence_signal(), publisher="gm0363", signer="gm0518"),
        "replay": publisher.replayed(domestic_violence_signal()),
        "not_encrypted": publisher.in_clear(domestic_violence_signal()),
        "duplicate": publisher.signed(duplicate),
    }
    # A valid signal before, between and after each bad record; the duplicate's original first.
    stream: list[Record] = [publisher.signed(duplicate)]
    for record in bad_kafka.values():
        stream += [publisher.signed(valid_signal()), record]
    stream.append(publisher.signed(valid_signal()))
    send(stack, stream)

    # HTTP bad inputs in between, while the Kafka records are processed.
    http_reasons = {
        "wrong_content_type": stack.post_signal(b"x", **{"content-type": "text/plain"}).json()["reason"],
        "unauthenticated": stack.post_signal(domestic_violence_signal(), as_municipality=None).json()[
            "reason"
        ],
        "wrong_publisher": stack.post_signal(domestic_violence_signal(), as_municipality="gm0518").json()[
            "reason"
        ],
    }
    assert http_reasons == {reason: reason for reason in http_reasons}

    # Every bad Kafka record has its dead letter, with its reason, and no personal data.
    def dead_letters() -> dict[str, dict[str, Any]] | None:
        letters: dict[str, dict[str, Any]] = {}
        for record in stack.read_topic("signals.rejected.v1"):
            value = json.loads(record.value)
            if value["channel"] == "kafka":
                letters.setdefault(value["reason"], value)
        return letters if set(bad_kafka) <= set(letters) else None

    letters = eventually(dead_letters, timeout=60)
    assert set(letters) == set(bad_kafka)
    assert letters["duplicate"]["first_accepted_at"] is not None
    assert letters["summary_too_long"]["errors"][0]["location"] == "summary"

    # Every valid signal was accepted exactly once.
    def accepted_ids() -> list[str] | None:
        ids = [header(r, "ce_signalid") for r in stack.read_topic("signals.accepted.v1")]
        return [i for i in ids if i is not None] if set(valid) <= set(ids) else None

    accepted = eventually(accepted_ids, timeout=60)
    assert sorted(accepted) == sorted(valid)

    # Each rejection is in the audit log, and the services are still ready.
    def audited() -> set[str] | None:
        reasons = {
            reason.split(":")[0]
            for record in stack.audit_records()
            if record["event_type"].endswith("rejected.v1")
            for reason in record["reasons"]
        }
        return reasons if set(bad_kafka) | set(http_reasons) <= reasons else None

    eventually(audited, timeout=60)
    for service in ("signals", "consent", "audit"):
        assert httpx.get(f"{stack.url(service)}/readyz").status_code == 200


def test_submitting_the_same_signal_id_twice_answers_the_first_result(stack: Stack) -> None:
    signal = domestic_violence_signal(signal_id=str(uuid.uuid4()))
    first = stack.post_signal(signal)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    second = stack.post_signal(signal)
    assert second.status_code == 409
    problem = second.json()
    assert problem["reason"] == "duplicate"
    assert problem["first_result"]["subject_pseudonym"] == first.json()["subject_pseudonym"]
    assert problem["first_result"]["accepted_at"] == first.json()["accepted_at"]
