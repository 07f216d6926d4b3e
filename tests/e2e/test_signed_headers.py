"""Every header of a delivery is signed: change, drop or add one and nobody trusts the record.

One real delivery, written by the running consent service on the real broker, is tampered with
one header at a time. The partner SDK refuses every tampered copy, and each copy written to the
partner's topic is flagged by the audit log instead of being logged as a delivery.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from partner import DeliveryRefused, ReceivedSignal
from partner.deliveries import open_delivery
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.envelope import Headers
from shared.contracts.registry import Registry
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

PARTNER = "veilig-thuis-amsterdam"  # the huiselijk_geweld agreement delivers to it
ENVELOPE_CORE = ("ce_specversion", "ce_id", "ce_source", "ce_type")  # without them, no event at all


def other_value(name: str, raw: bytes) -> bytes:
    """A plausible different value: the kind of rewrite an attacker would make."""
    if name == "ce_time":
        return (datetime.fromisoformat(raw.decode()) - timedelta(days=400)).isoformat().encode()
    if name == "ce_retentiondays":
        return b"3650"
    if name == "ce_purpose":
        return b"marketing"
    if name == "ce_recipient":
        return b"riec-amsterdam"
    return raw + b"0"


def tamperings(headers: Headers) -> list[tuple[str, Headers]]:
    """Each header changed, each header dropped, a header duplicated, nulled, and one added."""
    variants: list[tuple[str, Headers]] = []
    for name, _ in headers:
        variants.append((f"changed {name}", [(n, other_value(n, v) if n == name else v) for n, v in headers]))
        variants.append((f"dropped {name}", [(n, v) for n, v in headers if n != name]))
    variants.append(("added ce_onwardrecipient", [*headers, ("ce_onwardrecipient", b"riec-amsterdam")]))
    variants.append(("duplicated ce_purpose", [*headers, ("ce_purpose", b"marketing")]))
    nulled: list[tuple[str, Any]] = [(n, None if n == "ce_legalbasis" else v) for n, v in headers]
    variants.append(("nulled ce_legalbasis", nulled))
    return variants


def expected_audit_decision(tampering: str) -> str:
    """`unreadable` when the tampering leaves no event to read (no envelope, an unknown type, a
    header without a value); `forged` for everything else."""
    action, name = tampering.split(" ", 1)
    unparseable = (
        (action == "dropped" and name in ENVELOPE_CORE)
        or (action == "changed" and name in ("ce_specversion", "ce_type"))
        or action == "nulled"
    )
    return "unreadable" if unparseable else "forged"


def one_real_delivery(stack: Stack) -> ConsumerRecord:
    response = stack.post_signal(domestic_violence_signal())
    assert response.status_code == 202, response.text

    def delivered() -> ConsumerRecord | None:
        records = stack.read_topic(f"partner.{PARTNER}.signals.v1")
        return records[0] if records else None

    return eventually(delivered)


async def write(
    stack: Stack, key: bytes | None, value: bytes, variants: list[tuple[str, Headers]]
) -> dict[str, tuple[int, int]]:
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
    await producer.start()
    try:
        written = {}
        for tampering, headers in variants:
            metadata = await producer.send_and_wait(
                stack.topic(f"partner.{PARTNER}.signals.v1"), value, key=key, headers=headers
            )
            written[tampering] = (metadata.partition, metadata.offset)
        return written
    finally:
        await producer.stop()


def test_a_delivery_with_any_header_changed_dropped_or_added_is_refused_and_flagged(stack: Stack) -> None:
    # A real delivery by the running consent service, and the keys a partner holds.
    record = one_real_delivery(stack)
    value, headers = record.value or b"", list(record.headers)
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    consent_key = Registry.load(CONFIG_DIR, keys).ed25519_public("consent")
    private_key = keys.x25519_private(PARTNER)
    assert open_delivery(PARTNER, private_key, consent_key, headers, value).purpose  # genuine: it opens
    written_headers = {name for name, _ in headers}
    assert {"ce_purpose", "ce_legalbasis", "ce_retentiondays", "ce_recipient"} <= written_headers

    # Every tampered copy is refused by the partner SDK, with a reason and no other exception.
    variants = tamperings(headers)
    assert len(variants) == 2 * len(headers) + 3
    for tampering, tampered in variants:
        try:
            open_delivery(PARTNER, private_key, consent_key, tampered, value)
        except DeliveryRefused as refused:
            assert refused.reason, tampering
        else:
            raise AssertionError(f"{tampering}: the partner SDK opened a tampered delivery")

    # Written to the partner's topic, each copy is flagged by the audit log, never logged as delivered.
    written = asyncio.run(write(stack, record.key, value, variants))

    def facts() -> dict[tuple[int, int], dict[str, Any]] | None:
        topic = stack.topic(f"partner.{PARTNER}.signals.v1")
        found = {
            (fact["kafka_partition"], fact["kafka_offset"]): fact
            for fact in stack.audit_records()
            if fact["kafka_topic"] == topic
        }
        return found if set(written.values()) <= set(found) else None

    logged = eventually(facts)
    assert logged[record.partition, record.offset]["decision"] == "delivered"
    for tampering, position in written.items():
        assert logged[position]["decision"] == expected_audit_decision(tampering), tampering

    # The SDK's own loop hands the application the genuine delivery only.
    handled: list[ReceivedSignal] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal)

    asyncio.run(stack.partner(PARTNER).process(handle, wait_seconds=8))
    assert len(handled) == 1
