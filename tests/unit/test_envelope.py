"""The CloudEvents envelope in Kafka binary mode, checked against the official SDK."""

from __future__ import annotations

from cloudevents.v1.kafka import KafkaMessage, from_binary

from shared.envelope import Envelope


def test_headers_round_trip() -> None:
    envelope = Envelope(
        source="signals",
        type="nl.safetychain.signal.accepted.v1",
        subject="abc",
        extensions={"signalid": "123"},
    )
    parsed = Envelope.from_headers(envelope.to_headers())
    assert parsed.id == envelope.id
    assert parsed.correlation_id == envelope.correlation_id
    assert parsed.subject == "abc"
    assert parsed.extensions == {"signalid": "123"}


def test_the_official_cloudevents_sdk_reads_our_records() -> None:
    envelope = Envelope(source="signals", type="nl.safetychain.signal.accepted.v1", subject="abc")
    message = KafkaMessage(headers=dict(envelope.to_headers()), key=b"abc", value=b'{"a": 1}')
    event = from_binary(message, data_unmarshaller=lambda raw: raw)
    assert event["specversion"] == "1.0"
    assert event["id"] == envelope.id
    assert event["type"] == "nl.safetychain.signal.accepted.v1"
    assert event["source"] == "signals"
    assert event["subject"] == "abc"
    assert event.data == b'{"a": 1}'


def test_missing_required_attributes_are_refused() -> None:
    try:
        Envelope.from_headers([("ce_specversion", b"1.0"), ("ce_id", b"x")])
    except ValueError as error:
        assert "ce_source" in str(error) and "ce_type" in str(error)
    else:
        raise AssertionError("expected a ValueError")
