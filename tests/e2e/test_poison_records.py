"""A poison record never stops a service (real broker, the three services as processes).

Every kind of record that is no event at all (null, non-UTF-8, missing or duplicated headers, a
header name that is not UTF-8, deeply nested, huge, garbage, null value, null key) is written to
every kind of topic a service or the partner SDK consumes, interleaved with valid signals: each
is dead-lettered with a reason code or flagged by the audit log, nothing it carried is echoed,
every valid signal is accepted and delivered exactly once, and every service stays ready. A
property-based test then writes generated malformed records to the intake, receipts and state
topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partner import ReceivedSignal
from shared.contracts.events import RejectionReason
from shared.kafka_records import install as install_forgiving_record_parsing
from tests.e2e.stack import Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

install_forgiving_record_parsing()  # this test reads topics that hold such records too

VT = "veilig-thuis-amsterdam"
PARTNER_TOPIC = f"partner.{VT}.signals.v1"
MARK = "ECHOMARK7f3a"  # in every poison record's value and headers; never in what comes out
FLAGGED = {"unreadable", "forged", "unverifiable", "receipt-forged", "receipt-unverifiable"}
WRITER = {  # the principal that may produce on each topic
    "signals.intake.v1": "gm0363",
    "signals.accepted.v1": "signals",
    "subjects.erasure.v1": "signals",
    "subjects.keys.v1": "signals",
    "exchange.receipts.v1": VT,
    "consent.agreements.v1": "consent",
    "consent.directives.v1": "consent",
    PARTNER_TOPIC: "consent",
}
COMPACTED = {"subjects.keys.v1", "consent.agreements.v1", "consent.directives.v1"}
AUDITED = {
    "signals.accepted.v1",
    "subjects.erasure.v1",
    "exchange.receipts.v1",
    "consent.agreements.v1",
    "consent.directives.v1",
    PARTNER_TOPIC,
}
DEAD_LETTERED_BY = {  # the channel of the dead letters of each topic's poison records
    "signals.intake.v1": "kafka",
    "signals.accepted.v1": "consent",
    "subjects.erasure.v1": "consent",
}
Headers = list[tuple[str, bytes | None]]


class RawName(str):
    """A header name that goes on the wire as bytes that are not UTF-8 (as librdkafka or a raw
    protocol client can send it); only aiokafka's pure-Python record builder honours it."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"ce_\xff\xfe" + MARK.encode()


@contextlib.contextmanager
def raw_header_names() -> Iterator[None]:
    saved = message_accumulator.DefaultRecordBatchBuilder, producer_module.DefaultRecordBatchBuilder
    message_accumulator.DefaultRecordBatchBuilder = _DefaultRecordBatchBuilderPy
    producer_module.DefaultRecordBatchBuilder = _DefaultRecordBatchBuilderPy
    try:
        yield
    finally:
        message_accumulator.DefaultRecordBatchBuilder, producer_module.DefaultRecordBatchBuilder = saved


@dataclass(frozen=True)
class Poison:
    kind: str
    value: bytes | None
    headers: Headers
    key: bytes | None = b"poison-key"


@dataclass(frozen=True)
class Written:
    topic: str
    partition: int
    offset: int
    kind: str


def envelope_like(event_type: str) -> Headers:
    """Headers that look like an event of `event_type` (unsigned, from nobody we know)."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", f"urn:nld:oin:{MARK}:systeem:x".encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
        ("x-note", MARK.encode()),
    ]


def poisons(event_type: str, compacted: bool) -> list[Poison]:
    value = json.dumps({"note": MARK, "bsn": "999990019"}).encode()
    looks_right = envelope_like(event_type)
    kinds = [
        Poison("null header value", value, [(n, None if n == "ce_id" else v) for n, v in looks_right]),
        Poison(
            "non-UTF-8 header value", value, [*looks_right[:-1], ("ce_subject", b"\xff\xfe" + MARK.encode())]
        ),
        Poison(
            "wrong specversion",
            value,
            [(n, MARK.encode() if n == "ce_specversion" else v) for n, v in looks_right],
        ),
        Poison("missing headers", value, []),
        Poison(
            "duplicated headers",
            value,
            [*looks_right, ("ce_type", b"nl.safetychain.other.v1"), looks_right[1]],
        ),
        Poison("header name not UTF-8", value, [*looks_right, (RawName("x"), b"1")]),
        Poison("deeply nested JSON", b"[" * 100_000, looks_right),
        Poison("huge JSON", b'{"note": "' + MARK.encode() + b"y" * 900_000 + b'"}', looks_right),
        Poison("garbage", bytes(range(256)) * 8 + MARK.encode(), looks_right),
        Poison("null value", None, looks_right),
    ]
    if not compacted:  # a compacted topic refuses a record without a key
        kinds.append(Poison("null key", value, looks_right, key=None))
    return kinds


EVENT_TYPE = {
    "signals.intake.v1": "nl.safetychain.signal.submitted.v1",
    "signals.accepted.v1": "nl.safetychain.signal.accepted.v1",
    "subjects.erasure.v1": "nl.safetychain.subject.erased.v1",
    "subjects.keys.v1": "nl.safetychain.subject.data-key.v1",
    "exchange.receipts.v1": "nl.safetychain.exchange.receipt.v1",
    "consent.agreements.v1": "nl.safetychain.agreement.published.v1",
    "consent.directives.v1": "nl.safetychain.subject.directives.v1",
    PARTNER_TOPIC: "nl.safetychain.signal.delivered.v1",
}


async def write(stack: Stack, topic: str, records: list[Poison]) -> list[Written]:
    """Write `records` to `topic` as the principal that may write it; where each landed."""
    producer = AIOKafkaProducer(**stack.kafka_options(WRITER[topic]), acks="all", max_request_size=2**20)
    await producer.start()
    written: list[Written] = []
    try:
        with raw_header_names():
            for record in records:
                meta = await producer.send_and_wait(
                    stack.topic(topic), record.value, key=record.key, headers=record.headers
                )
                written.append(Written(topic, meta.partition, meta.offset, record.kind))
    finally:
        await producer.stop()
    return written


def post_valid(stack: Stack, posted: list[str]) -> None:
    signal = domestic_violence_signal(signal_id=str(uuid.uuid4()))
    response = stack.post_signal(signal)
    assert response.status_code == 202, response.text
    posted.append(signal["signal_id"])


def all_ready(stack: Stack) -> bool:
    return all(
        httpx.get(f"{stack.url(service)}/readyz", timeout=10).status_code == 200
        for service in ("signals", "consent", "audit")
    )


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in stack.read_topic("signals.rejected.v1") if r.value]


def audit_flags(stack: Stack) -> dict[tuple[str, int, int], dict[str, Any]]:
    return {
        (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]): r
        for r in stack.audit_records()
        if r["decision"] in FLAGGED
    }


def accepted_ids(stack: Stack) -> Counter[str]:
    return Counter(
        i for r in stack.read_topic("signals.accepted.v1") if (i := header(r, "ce_signalid")) is not None
    )


def assert_no_echo(stack: Stack) -> None:
    for record in stack.read_topic("signals.rejected.v1"):
        assert MARK.encode() not in (record.value or b"")
        assert all(MARK.encode() not in (value or b"") for _, value in record.headers)
    assert MARK not in json.dumps(stack.audit_records())


def test_every_poison_record_on_every_consumed_topic_is_dead_lettered_or_flagged_and_nothing_stops(
    stack: Stack,
) -> None:
    posted: list[str] = []
    written: list[Written] = []
    # A valid signal before the poison records of each topic, and one after them all.
    for topic in WRITER:
        post_valid(stack, posted)
        written += asyncio.run(write(stack, topic, poisons(EVENT_TYPE[topic], topic in COMPACTED)))
    post_valid(stack, posted)

    # Each poison record of the intake, accepted and erasure topics has its dead letter, with
    # a reason code.
    expected = Counter(DEAD_LETTERED_BY[w.topic] for w in written if w.topic in DEAD_LETTERED_BY)

    def all_dead_lettered() -> list[dict[str, Any]] | None:
        letters = [d for d in dead_letters(stack) if d["channel"] in expected]
        got = Counter(d["channel"] for d in letters)
        return letters if all(got[c] >= n for c, n in expected.items()) else None

    letters = eventually(all_dead_lettered, timeout=90)
    assert Counter(d["channel"] for d in letters) == expected
    assert {d["reason"] for d in letters} <= {reason.value for reason in RejectionReason}

    # Each one on a topic the audit log covers is logged there as unreadable or forged, never
    # as a fact.
    audited = [w for w in written if w.topic in AUDITED]

    def all_flagged() -> dict[tuple[str, int, int], dict[str, Any]] | None:
        flags = audit_flags(stack)
        found = all((stack.topic(w.topic), w.partition, w.offset) in flags for w in audited)
        return flags if found else None

    eventually(all_flagged, timeout=90)

    # Every valid signal was accepted exactly once and delivered exactly once.
    def all_accepted() -> Counter[str] | None:
        ids = accepted_ids(stack)
        return ids if set(posted) <= set(ids) else None

    accepted = eventually(all_accepted, timeout=60)
    assert all(accepted[signal_id] == 1 for signal_id in posted)
    wanted = {stack.delivery_id(VT, signal_id) for signal_id in posted}

    def delivered() -> Counter[str] | None:
        ids = Counter(d.delivery_id for d in stack.deliveries(VT))
        return ids if wanted <= set(ids) else None

    assert all(
        count == 1
        for delivery_id, count in eventually(delivered, timeout=60).items()
        if delivery_id in wanted
    )

    # The partner SDK processes its topic, poison records included: each valid delivery is
    # handled once, each poison record refused with a receipt, and it does not stop.
    handled: list[ReceivedSignal] = []

    async def handle(signal: ReceivedSignal) -> None:
        handled.append(signal)

    opened = asyncio.run(stack.partner(VT).process(handle, wait_seconds=8))
    assert opened == len(handled) and Counter(s.delivery_id for s in handled) == Counter(wanted)
    partner_poisons = [w for w in written if w.topic == PARTNER_TOPIC]

    def refused_receipts() -> list[dict[str, Any]] | None:
        receipts = [
            r for r in stack.audit_records() if r["decision"] == "receipt-refused" and r["source"] == VT
        ]
        return receipts if len(receipts) >= len(partner_poisons) else None

    assert len(eventually(refused_receipts, timeout=60)) == len(partner_poisons)

    # Nothing a poison record carried is echoed, and every service is still ready.
    assert_no_echo(stack)
    assert all_ready(stack)


# --- Generated malformed records -----------------------------------------------------------

GENERATED_TOPICS = ["signals.intake.v1", "exchange.receipts.v1", "consent.agreements.v1", "subjects.keys.v1"]
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "content-type",
            "ce_signature",
            "ce_signaturekeyid",
            "ce_subject",
            "ce_traceparent",
        ]
    ),
    st.text(max_size=12),
)
HEADER_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=24),
    st.sampled_from([b"1.0", b"\xff\xfe", b"", b"nl.safetychain.signal.accepted.v1", b"2026-11-29T10:00:00"]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
VALUES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.integers(1, 100_000).map(lambda depth: b"[" * depth),
    JSON.map(lambda document: json.dumps(document).encode()),
)
MALFORMED = st.tuples(
    st.sampled_from(GENERATED_TOPICS),
    st.binary(min_size=1, max_size=16),
    VALUES,
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=st.lists(MALFORMED, min_size=1, max_size=6))
def test_generated_malformed_records_are_dead_lettered_or_flagged_and_valid_signals_flow_once(
    stack: Stack, records: list[tuple[str, bytes, bytes | None, Headers]]
) -> None:
    kafka_letters_before = sum(1 for d in dead_letters(stack) if d["channel"] == "kafka")
    posted: list[str] = []
    written: list[Written] = []
    post_valid(stack, posted)
    for topic, key, value, headers in records:
        written += asyncio.run(write(stack, topic, [Poison("generated", value, headers, key)]))
    post_valid(stack, posted)

    # Each one on the intake is dead-lettered, each one on the receipts or agreements topic is
    # flagged by the audit log (the keys topic is consent's alone: it ignores them).
    intake = sum(1 for w in written if w.topic == "signals.intake.v1")
    audited = [w for w in written if w.topic in AUDITED]

    def handled() -> bool:
        letters = sum(1 for d in dead_letters(stack) if d["channel"] == "kafka")
        flags = audit_flags(stack) if audited else {}
        return letters >= kafka_letters_before + intake and all(
            (stack.topic(w.topic), w.partition, w.offset) in flags for w in audited
        )

    eventually(handled, timeout=60)
    assert sum(1 for d in dead_letters(stack) if d["channel"] == "kafka") == kafka_letters_before + intake
    # Every valid signal is accepted once (posting answered 202 only after it committed), and
    # the services are still ready.
    accepted = accepted_ids(stack)
    assert all(accepted[signal_id] == 1 for signal_id in posted)
    assert all_ready(stack)
