"""Consent over Kafka: signals.accepted.v1 in, decisions and deliveries out, exactly once.

Before each batch the processor catches up with the agreements, directives, data keys and
recipients topics, so any change (or erasure) committed before the batch applies to it, and an
erasure reaches every partner an earlier batch delivered to. Each accepted record is checked
(the signals service's signature over its exact bytes), its subject's data key looked up, and
handed to the Enforcer; what it returns, signed by the record writer, and the consumed offset
are produced in one transaction (shared.plumbing.transactional). A record consent cannot trust
or read becomes a dead letter on signals.rejected.v1 rather than stopping the stream. A data key
that is not there yet is no verdict on the record: the batch aborts and is retried
(DataKeyUnavailableError).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from services.consent.enforcement import SERVICE_ID, Enforcer
from services.consent.settings import ConsentSettings
from services.consent.state import ConsentState, DataKeyUnavailableError
from shared.contracts.crypto.signing import SignatureError, verify_record
from shared.contracts.emitted import Emitted
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    Event,
    ExchangeDecided,
    FieldError,
    RejectionReason,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectErased,
)
from shared.contracts.topics import SUBJECTS_ERASURE, Party, consumed_by, is_compacted
from shared.plumbing.logging import bind_correlation_id, get_logger
from shared.plumbing.metrics import DECISIONS, DELIVERIES, ERASURE_NOTICES, Tally
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from shared.plumbing.transactional import DeadLetter, TransactionalProcessor, Transform

log = get_logger()
PROCESSED: Final = tuple(spec for spec in consumed_by(Party.CONSENT) if not is_compacted(spec))
"""What the processor reads, from the topic table: every topic consent consumes but its state
topics (those its state views follow whole): accepted signals and erasures."""
UNREADABLE_ENVELOPE = "its CloudEvents headers are missing, without a value, not UTF-8 or of another type"


def _dead_letter(record: ConsumerRecord, reason: RejectionReason, problem: str) -> Emitted[SignalRejected]:
    rejected = SignalRejected(
        signal_id=None,
        municipality=None,
        channel="consent",
        reason=reason,
        errors=(
            FieldError(
                reason=reason,
                location="",
                message=f"{record.topic}[{record.partition}]@{record.offset}: {problem}",
            ),
        ),
        rejected_at=datetime.now(UTC),
    )
    return Emitted(rejected, key=str(rejected.rejection_id), time=rejected.rejected_at)


@dataclass(frozen=True)
class SubjectMemory:
    """Per municipality that signalled a subject, the partners that received its data; and the
    sequence of the record it was read from (or is written as)."""

    sequence: int = 0
    provided: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def delivered(self, municipality: str, recipients: frozenset[str]) -> SubjectMemory:
        """This memory after `municipality`'s signal reached `recipients` (maybe none)."""
        grown = {**self.provided, municipality: self.provided.get(municipality, frozenset()) | recipients}
        return self if grown == self.provided else SubjectMemory(self.sequence + 1, grown)

    def recipients_of(self, municipality: str | None) -> frozenset[str]:
        """Who received what `municipality` provided (None: what anyone provided)."""
        if municipality is None:
            return frozenset().union(*self.provided.values())
        return self.provided.get(municipality, frozenset())

    def erased(self, municipality: str | None) -> SubjectMemory:
        """This memory after `municipality`'s erasure (None: the platform's, of all)."""
        if municipality is None:
            kept: dict[str, frozenset[str]] = {}
        else:
            kept = {m: r for m, r in self.provided.items() if m != municipality}
        return self if kept == self.provided else SubjectMemory(self.sequence + 1, kept)


class RecipientsMemory:
    """Who received what each municipality provided about each subject: the compacted view
    (caught up before each batch), plus what the batch in flight added (its records are not
    committed, so the view cannot show them yet)."""

    def __init__(self, state: ConsentState) -> None:
        self._state = state
        self._batch: dict[str, SubjectMemory] = {}

    def of(self, subject: str) -> SubjectMemory:
        if subject in self._batch:
            return self._batch[subject]
        known = self._state.recipients.get(subject)
        if known is None:
            return SubjectMemory()
        return SubjectMemory(
            known.sequence, {entry.municipality: frozenset(entry.recipients) for entry in known.provided}
        )

    def set(self, subject: str, memory: SubjectMemory) -> None:
        self._batch[subject] = memory

    def new_batch(self) -> None:
        self._batch.clear()


def _verified_envelope(
    record: ConsumerRecord, signals_key: Ed25519PublicKey, expected_type: str
) -> Emitted[SignalRejected] | Envelope:
    """The record's envelope if the signals service signed it and it is of the expected type;
    else its dead letter."""
    headers = list(record.headers)
    try:
        envelope = Envelope.from_headers(headers)
        verify_record([signals_key], record.value or b"", headers)
        if envelope.type != expected_type:
            raise ValueError(f"{envelope.type} on {record.topic}")
    except SignatureError as error:
        log.error("record_untrusted", topic=record.topic, offset=record.offset, reason=error.reason)
        return _dead_letter(record, RejectionReason(error.reason), str(error))
    except ValueError as error:
        log.error("record_unreadable", topic=record.topic, offset=record.offset, error=type(error).__name__)
        # Not str(error): it may quote a header the record carried.
        return _dead_letter(record, RejectionReason.MALFORMED_EVENT, UNREADABLE_ENVELOPE)
    return envelope


def consent_transform(
    enforcer: Enforcer,
    writer: RecordWriter,
    state: ConsentState,
    signals_key: Ed25519PublicKey,
    memory: RecipientsMemory,
    prefix: str,
    tally: Tally,
) -> Transform:
    erasure_topic = SUBJECTS_ERASURE.prefixed(prefix)

    def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        # In the processor's worker thread: it reads the state views (caught up before the
        # batch; their followers may apply newer records meanwhile) and nothing else shared.
        emitted = forward_erasure(record) if record.topic == erasure_topic else enforce_accepted(record)
        return writer.records(emitted)

    def enforce_accepted(record: ConsumerRecord) -> list[Emitted[Event]]:
        checked = _verified_envelope(record, signals_key, SignalAccepted.event_type)
        if isinstance(checked, Emitted):
            return [checked]
        envelope = checked
        try:
            accepted = SignalAccepted.model_validate_json(record.value or b"")
        except ValidationError as error:
            log.error("accepted_record_unreadable", offset=record.offset, error=type(error).__name__)
            return [_dead_letter(record, RejectionReason.MALFORMED_EVENT, type(error).__name__)]
        bind_correlation_id(envelope.correlation_id)
        subject = accepted.subject_pseudonym
        data_key = state.keys.data_key(subject, accepted.municipality)  # raises: abort and retry
        outgoing = enforcer.enforce(
            accepted,
            envelope.correlation_id,
            data_key,
            state.latest_agreements(),
            state.directives_of(subject),
        )
        delivered_to = {out.event.recipient for out in outgoing if isinstance(out.event, SignalDelivered)}
        log.info("signal_enforced", signal_id=str(accepted.signal_id), deliveries=len(delivered_to))
        decided = sum(1 for out in outgoing if isinstance(out.event, ExchangeDecided))
        tally.add(DECISIONS.labels("permit"), len(delivered_to))
        tally.add(DECISIONS.labels("deny"), decided - len(delivered_to))
        for partner in delivered_to:
            tally.add(DELIVERIES.labels(partner))
        known = memory.of(subject)
        grown = known.delivered(accepted.municipality, frozenset(delivered_to))
        if grown is not known:
            memory.set(subject, grown)
            outgoing.append(
                enforcer.remembered_recipients(
                    subject, grown.sequence, grown.provided, envelope.correlation_id
                )
            )
        return outgoing

    def forward_erasure(record: ConsumerRecord) -> list[Emitted[Event]]:
        checked = _verified_envelope(record, signals_key, SubjectErased.event_type)
        if isinstance(checked, Emitted):
            return [checked]
        try:
            erased = SubjectErased.model_validate_json(record.value or b"")
        except ValidationError as error:
            return [_dead_letter(record, RejectionReason.MALFORMED_EVENT, type(error).__name__)]
        bind_correlation_id(checked.correlation_id)
        subject = erased.subject_pseudonym
        # Only the partners that received what was erased: a municipality's erasure reaches
        # those its own signals reached, the platform's every one (ADR 0009).
        known = memory.of(subject)
        recipients = tuple(sorted(known.recipients_of(erased.municipality)))
        log.info("erasure_forwarded", subject=subject, recipients=len(recipients))
        notices = enforcer.erasure_notices(erased, recipients, checked.correlation_id)
        for partner in recipients:
            tally.add(ERASURE_NOTICES.labels(partner))
        remaining = known.erased(erased.municipality)
        if remaining is known:
            return notices
        memory.set(subject, remaining)
        return [
            *notices,
            enforcer.remembered_recipients(
                subject, remaining.sequence, remaining.provided, checked.correlation_id
            ),
        ]

    return transform


def consent_dead_letter(writer: RecordWriter) -> DeadLetter:
    """The dead letter of a record whose processing kept failing (the processor logged the error):
    its reason code and where it was read, nothing of what it carried."""

    def dead_letter(record: ConsumerRecord, error: BaseException) -> list[OutgoingRecord]:
        return [writer.record(_dead_letter(record, RejectionReason.PROCESSING_FAILED, type(error).__name__))]

    return dead_letter


def consent_processor(
    settings: ConsentSettings,
    enforcer: Enforcer,
    writer: RecordWriter,
    state: ConsentState,
    signals_key: Ed25519PublicKey,
) -> TransactionalProcessor:
    memory = RecipientsMemory(state)
    tally = Tally()

    async def before_batch() -> None:
        memory.new_batch()
        # A change committed before this batch must apply to it ("takes effect at once").
        await state.catch_up()

    return TransactionalProcessor(
        settings,
        name=SERVICE_ID,
        topics=[spec.prefixed(settings.topic_prefix) for spec in PROCESSED],
        transactional_id=f"{SERVICE_ID}-{settings.instance_id}",
        transform=consent_transform(
            enforcer, writer, state, signals_key, memory, settings.topic_prefix, tally
        ),
        max_batch=settings.max_batch,
        before_batch=before_batch,
        dead_letter=consent_dead_letter(writer),
        # A data key not there yet, or state that did not catch up in time: retried, never decided.
        transient=(DataKeyUnavailableError, TimeoutError),
        tally=tally,
    )
