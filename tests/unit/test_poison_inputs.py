"""Poison inputs, piece by piece and without a broker: each is refused with a reason, none
raises past the code that reads it, none is echoed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords

from partner.client import refusal
from partner.deliveries import DeliveryRefused
from services.audit.log.facts import UnreadableRecordError, fact_from_record, unreadable_fact
from services.signals.validation import Invalid, decode_json
from shared.contracts.crypto.signing import SignatureError, sign_record
from shared.contracts.events import RejectionReason
from shared.kafka_records import ForgivingMemoryRecords
from tests.unit.intake_harness import Harness, rejected
from tests.unit.test_signal_contract import valid_submission

MARK = "ECHOMARK7f3a"


class RawName(str):
    """A header name whose wire bytes are not UTF-8."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"ce_\xff\xfe"


def batch_with_a_header_name_that_is_not_utf8() -> bytes:
    builder = _DefaultRecordBatchBuilderPy(2, 0, 0, -1, -1, -1, 1 << 20)
    builder.append(0, 1_700_000_000_000, b"k", b"before", [("ce_id", b"1")])
    builder.append(1, 1_700_000_000_001, None, b"poison", [(RawName("x"), b"1"), ("ce_id", None)])
    builder.append(2, 1_700_000_000_002, b"k", b"after", [])
    return bytes(builder.build())


def test_aiokafkas_own_reader_fails_on_a_header_name_that_is_not_utf8() -> None:
    records = MemoryRecords(batch_with_a_header_name_that_is_not_utf8())
    with pytest.raises(UnicodeDecodeError):
        list(records.next_batch())  # what every getmany of the partition would raise, forever


def test_the_forgiving_reader_reads_every_record_of_such_a_batch_with_the_name_replaced() -> None:
    records = ForgivingMemoryRecords(batch_with_a_header_name_that_is_not_utf8())
    batch = records.next_batch()
    assert batch.validate_crc() and batch.base_offset == 0
    read = list(batch)
    assert [(r.offset, r.key, r.value) for r in read] == [
        (0, b"k", b"before"),
        (1, None, b"poison"),
        (2, b"k", b"after"),
    ]
    assert read[1].headers == [("ce_\ufffd\ufffd", b"1"), ("ce_id", None)]
    assert not records.has_next()


def test_deeply_nested_json_is_malformed_json_not_a_recursion_error() -> None:
    refused = decode_json(b"[" * 100_000)
    assert isinstance(refused, Invalid) and refused.reason is RejectionReason.MALFORMED_JSON


def test_a_signed_sealed_signal_nested_too_deeply_is_rejected_as_malformed_json(harness: Harness) -> None:
    outcome = harness.process(*harness.record(b"[" * 5_000))
    assert rejected(outcome).reason is RejectionReason.MALFORMED_JSON


def test_a_signed_time_without_an_offset_is_refused_not_compared(harness: Harness) -> None:
    value, headers = harness.record(valid_submission())
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat().encode()
    retimed = [(name, naive if name == "ce_time" else raw) for name, raw in headers]
    resigned = sign_record(harness.keys.ed25519_private("gm0363"), value, retimed)
    assert rejected(harness.process(value, resigned)).reason is RejectionReason.REPLAY


@pytest.mark.parametrize(
    "headers",
    [
        [("ce_specversion", MARK.encode()), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")],
        [("ce_specversion", b"1.0"), ("ce_id", None), ("ce_source", MARK.encode()), ("ce_type", b"t")],
        [("ce_specversion", b"1.0"), (f"ce_{MARK}", None), ("ce_source", b"s"), ("ce_type", b"t")],
        [("ce_specversion", b"1.0"), ("ce_id", b"\xff" + MARK.encode())],
    ],
    ids=["wrong specversion", "null ce_id", "null extension", "not UTF-8"],
)
def test_an_intake_record_with_unreadable_headers_is_dead_lettered_without_quoting_them(
    harness: Harness,
    headers: list[Any],
) -> None:
    outcome = harness.process(json.dumps({"note": MARK}).encode(), headers)
    assert rejected(outcome).reason is RejectionReason.SCHEMA_VIOLATION
    assert MARK.encode() not in (outcome.records[0].value or b"")


@pytest.mark.parametrize(
    "headers",
    [
        [("ce_specversion", MARK.encode()), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")],
        [("ce_specversion", b"1.0"), (f"ce_{MARK}", None), ("ce_source", b"s"), ("ce_type", b"t")],
    ],
    ids=["wrong specversion", "null extension"],
)
def test_audit_keeps_no_header_text_of_a_record_whose_envelope_it_cannot_read(headers: list[Any]) -> None:
    with pytest.raises(UnreadableRecordError) as raised:
        fact_from_record("t", 0, 0, headers, b"{}")
    assert MARK not in str(raised.value)


@pytest.mark.parametrize(
    ("ce_ids", "kept"),
    [
        ([b"3f1e2d4c-0000-4000-8000-000000000001"], "3f1e2d4c-0000-4000-8000-000000000001"),
        ([None], "unknown"),
        ([b"\xff\xfe"], "unknown"),
        ([MARK.encode() + b" " + b"x" * 80], "unknown"),
        ([b"a", b"b"], "unknown"),
        ([], "unknown"),
    ],
    ids=["plain", "null", "not UTF-8", "long text", "twice", "absent"],
)
def test_an_unreadable_fact_keeps_the_ce_id_only_when_it_is_a_plain_id(
    ce_ids: list[bytes | None], kept: str
) -> None:
    fact = unreadable_fact("t", 0, 7, [("ce_id", value) for value in ce_ids], "unreadable")  # type: ignore[misc]
    assert fact.event_id == kept and fact.decision == "unreadable"


def test_a_refusal_states_a_stable_reason_never_the_records_own_text() -> None:
    try:
        try:
            raise SignatureError("unknown_key", f"key id {MARK!r} is none of the given keys")
        except SignatureError as error:
            raise DeliveryRefused(str(error), "d-1") from error
    except DeliveryRefused as refused:
        by_signature = refusal(refused)
    assert (by_signature.reason, by_signature.delivery_id) == ("unknown_key", "d-1")
    assert refusal(KeyError(MARK)).reason == "unreadable record (KeyError)"
    plain = DeliveryRefused("addressed to someone else")
    assert refusal(plain) is plain


@pytest.mark.parametrize(
    "headers",
    [
        [("ce_traceparent", None)],
        [("ce_traceparent", b"")],
        [("ce_traceparent", b"\xff\xfe")],
        [("ce_traceparent", b"00-zz-yy-01")],
        [("ce_traceparent", b"00-" + b"a" * 40 + b"-" + b"b" * 16 + b"-01")],
        [("ce_traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")],
        [("ce_traceparent", b"x"), ("ce_traceparent", b"y")],
        [],
    ],
)
def test_a_poison_traceparent_never_stops_the_processing_span(headers: list[tuple[str, Any]]) -> None:
    from aiokafka import ConsumerRecord

    from shared.plumbing.tracing import configure_tracing
    from shared.plumbing.transactional import record_span

    configure_tracing("test", None)  # off, as in production without an endpoint
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "t.signals.intake.v1", 0, 7, 0, 0, None, b"{}", None, 0, 2, headers
    )
    with record_span(record, "t."):
        pass
