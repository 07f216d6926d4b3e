"""A signals replica answers its HTTP callers from the verdict records it follows: only those
this service signed, of the topic's type, naming the intake record they decide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.signals.outcomes import verdict_of
from shared.contracts.emitted import Emitted
from shared.contracts.events import FieldError, RejectionReason, SignalRejected
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter

PREFIX = "t."
SIGNALS_KEY = Ed25519PrivateKey.generate()
WHERE = "t.signals.intake.v1:4:17"


def _rejected(extensions: dict[str, str | None]) -> Emitted[SignalRejected]:
    event = SignalRejected(
        signal_id=uuid.uuid4(),
        municipality="gm0363",
        channel="http",
        reason=RejectionReason.UNKNOWN_CATEGORY,
        errors=(FieldError(reason=RejectionReason.UNKNOWN_CATEGORY, location="category", message="unknown"),),
        rejected_at=datetime.now(UTC),
    )
    return Emitted(event, key=str(event.signal_id), correlation_id="0" * 32, extensions=extensions)


def _read(out: OutgoingRecord, topic: str | None = None) -> ConsumerRecord[bytes, bytes]:
    value = out.value or b""
    return ConsumerRecord(topic or out.topic, 4, 99, 0, 0, out.key, value, None, 0, len(value), out.headers)


def _writer(key: Ed25519PrivateKey = SIGNALS_KEY) -> RecordWriter:
    return RecordWriter(key, "urn:safety-chain:signals", PREFIX)


def test_a_verdict_signed_by_signals_answers_the_intake_record_it_names() -> None:
    emitted = _rejected({"intakerecord": WHERE})
    found = verdict_of(_read(_writer().record(emitted)), PREFIX, SIGNALS_KEY.public_key())
    assert found is not None
    provenance, outcome = found
    assert provenance == WHERE
    assert outcome.rejected == emitted.event and outcome.accepted is None


def test_what_names_no_intake_record_or_was_not_signed_by_signals_answers_nobody() -> None:
    public = SIGNALS_KEY.public_key()
    # a refusal before intake (or consent's dead letter) names no intake record
    assert verdict_of(_read(_writer().record(_rejected({}))), PREFIX, public) is None
    # anyone else's signature: never an answer to a caller
    forged = _writer(Ed25519PrivateKey.generate()).record(_rejected({"intakerecord": WHERE}))
    assert verdict_of(_read(forged), PREFIX, public) is None
    # a verdict of the wrong type for its topic
    misplaced = _read(_writer().record(_rejected({"intakerecord": WHERE})), topic="t.signals.accepted.v1")
    assert verdict_of(misplaced, PREFIX, public) is None
