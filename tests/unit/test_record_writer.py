"""The record writer: the topic from the topic table, the CloudEvents type from the event, the
envelope from what the use case emitted, and a signature over all of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import ClassVar, TypeVar, cast

import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.agreements import AgreementPublished
from shared.contracts.crypto.signing import KEY_ID_HEADER, SIGNATURE_HEADER, verify_record
from shared.contracts.emitted import Emitted, Tombstone
from shared.contracts.envelope import TYPE_PREFIX, Envelope, Headers, is_correlation_id
from shared.contracts.events import (
    AuditRead,
    EnvelopeHeaders,
    Event,
    ExchangeDecided,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectDataKey,
    SubjectErased,
)
from shared.contracts.sources import source_urn
from shared.contracts.topics import (
    EXCHANGE_DECISIONS,
    NoTopicError,
    all_topics,
    partner_topic,
    topic_carrying,
)
from shared.plumbing.kafka import SignedPublisher
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from shared.plumbing.settings import CommonSettings
from tests.unit.test_contract_docs import EXAMPLES, PSEUDONYM

KEY = Ed25519PrivateKey.generate()
SOURCE = source_urn("99999999000000000001", "signals")
WRITER = RecordWriter(KEY, SOURCE, "t.")
PARTNER = "riec-amsterdam"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EventT = TypeVar("EventT", bound=Event)
EVENTS = [example for example in EXAMPLES.values() if isinstance(example, Event)]


def example(name: str, kind: type[EventT]) -> EventT:
    """The contract documents' example of `kind` (tests/unit/test_contract_docs.py)."""
    event = EXAMPLES[name]
    assert isinstance(event, kind)
    return event


def headers_of(record: OutgoingRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def every_extension(kind: type[Event]) -> dict[str, str | None]:
    return {name: "x" for name in kind.envelope_headers.extensions}


class Unlisted:
    """Writes like an event, but of a type on no topic of the table. Deliberately no subclass of
    Event: tests/unit/test_event_types.py counts every Event subclass as a contract model."""

    event_type: ClassVar[str] = TYPE_PREFIX + "test.unlisted.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="sometimes")

    @classmethod
    def envelope_extensions(cls, **values: str | None) -> dict[str, str]:
        return cls.envelope_headers.values(cls.__name__, **values)

    def to_bytes(self) -> bytes:
        return b"{}"


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_a_record_goes_to_the_topic_the_table_names_for_its_event_with_the_events_type(event: Event) -> None:
    kind = type(event)
    # The table, read independently: the one topic (of a deployment with one partner) carrying the type.
    (carrier,) = [spec for spec in all_topics([PARTNER]) if kind.event_type in spec.event_types]
    recipient = PARTNER if carrier == partner_topic(PARTNER) else None
    record = WRITER.record(
        Emitted(event, key="k", subject="s", recipient=recipient, extensions=every_extension(kind))
    )
    assert record.topic == carrier.prefixed("t.")
    assert headers_of(record)["ce_type"] == kind.event_type
    assert record.value == event.to_bytes()


def test_the_envelope_is_the_writers_source_and_the_facts_the_use_case_gave_signed_with_the_value() -> None:
    accepted = example("signal.accepted.v1.json", SignalAccepted)
    emitted = Emitted(
        accepted,
        key=PSEUDONYM,
        subject=PSEUDONYM,
        correlation_id="c" * 32,
        extensions={"signalid": str(accepted.signal_id)},
        time=NOW,
    )
    record = WRITER.record(emitted)
    # Signed by the writer's key, over the value's exact bytes and every header.
    assert record.value is not None
    verify_record([KEY.public_key()], record.value, record.headers)
    assert record.key == PSEUDONYM.encode() and record.value == accepted.to_bytes()
    # The envelope is what the use case would have built by hand: nothing more, nothing less.
    envelope = Envelope.from_headers(record.headers)
    assert envelope == Envelope(
        id=envelope.id,
        source=SOURCE,
        type=SignalAccepted.event_type,
        time=NOW,
        subject=PSEUDONYM,
        correlation_id="c" * 32,
        extensions={"signalid": str(accepted.signal_id)},
    )
    assert [name for name, _ in record.headers] == [
        *(name for name, _ in envelope.to_headers()),
        SIGNATURE_HEADER,
        KEY_ID_HEADER,
    ]


def test_without_a_correlation_id_or_time_a_record_starts_a_trace_stamped_when_written() -> None:
    erased = example("subject.erased.v1.json", SubjectErased)
    before = datetime.now(UTC)
    envelope = Envelope.from_headers(WRITER.record(Emitted(erased, key=PSEUDONYM)).headers)
    assert is_correlation_id(envelope.correlation_id)
    assert envelope.time is not None and before <= envelope.time <= datetime.now(UTC)
    assert envelope.subject is None and envelope.extensions == {}


def test_an_optional_extension_given_as_none_is_left_out() -> None:
    rejected = example("signal.rejected.v1.json", SignalRejected)
    record = WRITER.record(Emitted(rejected, key="k", extensions={"signalid": None}))
    assert "ce_signalid" not in headers_of(record)


@pytest.mark.parametrize(
    "extensions",
    [{"recipient": PARTNER}, {**every_extension(ExchangeDecided), "purpose": "x"}],
    ids=["one missing", "one undeclared"],
)
def test_extensions_the_event_does_not_declare_exactly_are_refused(extensions: dict[str, str | None]) -> None:
    decided = example("exchange.decided.v1.json", ExchangeDecided)
    with pytest.raises(ValueError, match="extensions"):
        WRITER.record(Emitted(decided, key="k", subject="s", extensions=extensions))


def test_an_event_of_a_type_on_no_topic_is_refused() -> None:
    with pytest.raises(NoTopicError):
        WRITER.record(Emitted(cast(Event, Unlisted()), key="k"))
    with pytest.raises(NoTopicError):
        topic_carrying(Unlisted.event_type)


def test_a_partners_event_needs_its_recipient_and_a_central_event_has_none() -> None:
    delivered = example("signal.delivered.v1.json", SignalDelivered)
    with pytest.raises(NoTopicError, match="name the recipient"):
        WRITER.record(Emitted(delivered, key="k", subject="s", extensions=every_extension(SignalDelivered)))
    with pytest.raises(NoTopicError):
        topic_carrying(ExchangeDecided.event_type, PARTNER)
    assert topic_carrying(ExchangeDecided.event_type) is EXCHANGE_DECISIONS
    assert topic_carrying(SignalDelivered.event_type, PARTNER) == partner_topic(PARTNER)


def test_a_tombstone_has_no_value_and_an_envelope_signed_over_the_empty_value() -> None:
    tombstone = Tombstone(
        SubjectDataKey,
        key=f"{PSEUDONYM}:gm0363",
        subject=PSEUDONYM,
        correlation_id="d" * 32,
        extensions={"municipality": "gm0363"},
        time=NOW,
    )
    record = WRITER.record(tombstone)
    assert record.topic == "t.subjects.keys.v1" and record.key == f"{PSEUDONYM}:gm0363".encode()
    assert record.value is None
    verify_record([KEY.public_key()], b"", record.headers)
    found = headers_of(record)
    assert found["ce_type"] == SubjectDataKey.event_type and found["ce_subject"] == PSEUDONYM
    assert found["ce_municipality"] == "gm0363" and found["ce_time"] == NOW.isoformat()


def test_a_tombstone_on_a_topic_that_is_not_compacted_is_refused() -> None:
    with pytest.raises(ValueError, match="not compacted"):
        WRITER.record(Tombstone(SubjectErased, key=PSEUDONYM, subject=PSEUDONYM))


def test_records_keep_the_order_they_were_emitted_in() -> None:
    erased = example("subject.erased.v1.json", SubjectErased)
    records = WRITER.records(
        [
            Tombstone(SubjectDataKey, key="a", subject="a", extensions={"municipality": "m"}),
            Emitted(erased, key="b"),
        ]
    )
    assert [(record.topic, record.key) for record in records] == [
        ("t.subjects.keys.v1", b"a"),
        ("t.subjects.erasure.v1", b"b"),
    ]


class _CapturingProducer:
    """Stands in for an aiokafka producer: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Headers | None = None
    ) -> None:
        self.sent.append((topic, key, value))


def test_the_signed_publisher_writes_through_the_writer_on_the_topic_the_table_names() -> None:
    # The caller names no topic: the writer takes its type's from the table, prefixed.
    publisher = SignedPublisher(CommonSettings(topic_prefix="t."), KEY, SOURCE)
    producer = _CapturingProducer()
    publisher._producer = cast(AIOKafkaProducer, producer)
    read = example("audit.read.v1.json", AuditRead)
    asyncio.run(publisher.publish("gm0363", read))
    agreement = example("consent.agreement.v1.json", AgreementPublished)
    asyncio.run(publisher.publish(agreement.agreement.id, agreement))
    assert producer.sent == [
        ("t.audit.reads.v1", b"gm0363", read.to_bytes()),
        ("t.consent.agreements.v1", agreement.agreement.id.encode(), agreement.to_bytes()),
    ]
