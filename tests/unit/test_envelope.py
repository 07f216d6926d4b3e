"""The CloudEvents envelope in Kafka binary mode, checked against the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.v1.kafka import KafkaMessage, from_binary

from shared.contracts.envelope import Envelope


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


def test_a_record_without_ce_time_is_given_no_invented_time() -> None:
    sent = [
        (name, raw) for name, raw in Envelope(source="gm0363", type="t").to_headers() if name != "ce_time"
    ]
    parsed = Envelope.from_headers(sent)
    assert parsed.time is None
    # Passed on, it still carries no time.
    assert "ce_time" not in dict(parsed.to_headers())


def test_a_header_without_a_value_is_refused_as_a_value_error() -> None:
    headers: list[tuple[str, Any]] = [*Envelope(source="gm0363", type="t").to_headers(), ("ce_purpose", None)]
    with pytest.raises(ValueError, match="ce_purpose"):
        Envelope.from_headers(headers)


def test_headers_outside_cloudevents_are_not_read() -> None:
    headers: list[tuple[str, Any]] = [
        *Envelope(source="gm0363", type="t").to_headers(),
        ("correlation_id", b"\xff not utf-8"),
        ("x-null", None),
    ]
    assert Envelope.from_headers(headers).source == "gm0363"
