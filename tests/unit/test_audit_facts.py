"""What the audit log keeps of a Kafka record: metadata only, and the partner's word checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.audit.facts import UnreadableRecordError, fact_from_record
from shared.contracts.events import DeliveryProvenance, ExchangeReceipt
from shared.envelope import Envelope, Headers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def receipt_record() -> tuple[bytes, Headers]:
    receipt = ExchangeReceipt(
        signal_id=uuid.uuid4(),
        recipient="veilig-thuis-amsterdam",
        status="opened",
        agreement_id="huiselijk-geweld-amsterdam",
        agreement_version=1,
        partner_pseudonym="a" * 32,
        delivery=DeliveryProvenance(topic="partner.veilig-thuis-amsterdam.signals.v1", partition=0, offset=3),
        received_at=NOW,
    )
    envelope = Envelope(source="veilig-thuis-amsterdam", type=ExchangeReceipt.event_type, time=NOW)
    return receipt.to_bytes(), envelope.to_headers()


@pytest.mark.parametrize(
    ("check", "decision"),
    [(True, "receipt-opened"), (False, "receipt-forged"), (None, "receipt-unverifiable")],
)
def test_a_receipt_is_logged_as_genuine_forged_or_unverifiable(check: bool | None, decision: str) -> None:
    value, headers = receipt_record()
    fact = fact_from_record("exchange.receipts.v1", 0, 9, headers, value, lambda *_: check)
    assert fact.decision == decision
    assert fact.source == "veilig-thuis-amsterdam"
    assert (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset) == ("exchange.receipts.v1", 0, 9)


def test_a_record_of_an_unknown_type_is_unreadable_without_echoing_its_content() -> None:
    headers = Envelope(source="x", type="nl.safetychain.unknown.v1").to_headers()
    with pytest.raises(UnreadableRecordError) as raised:
        fact_from_record("t", 0, 0, headers, b'{"bsn": "999990019"}')
    assert "999990019" not in str(raised.value)


def test_a_record_without_an_envelope_is_unreadable() -> None:
    with pytest.raises(UnreadableRecordError):
        fact_from_record("t", 0, 0, [], b"{}")
