"""Consent over Kafka: signals.accepted.v1 in, decisions and deliveries out, exactly once.

Before each batch the processor catches up with the agreements, directives and subject keys
topics, so any change (or erasure) committed before the batch applies to it. Each accepted
record is checked (the signals service's signature over its exact bytes), its subject's data
key looked up, and handed to the Enforcer; the outputs and the consumed offset are produced in
one transaction (shared.transactional). A record consent cannot trust or read becomes a dead
letter on signals.rejected.v1 rather than stopping the stream. A data key that is not there
yet is no verdict on the record: the batch aborts and is retried (DataKeyUnavailableError).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from services.consent.enforcement import SERVICE_ID, Enforcer
from services.consent.settings import ConsentSettings
from services.consent.state import ConsentState
from shared.contracts.events import FieldError, RejectionReason, SignalAccepted, SignalRejected
from shared.crypto.signing import SignatureError, verify_record
from shared.envelope import Envelope
from shared.logging import bind_correlation_id, get_logger
from shared.topics import SIGNALS_ACCEPTED, SIGNALS_REJECTED
from shared.transactional import OutgoingRecord, TransactionalProcessor, Transform

log = get_logger()


def _dead_letter(
    enforcer: Enforcer, record: ConsumerRecord, reason: RejectionReason, problem: str
) -> OutgoingRecord:
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
    envelope = Envelope(source=SERVICE_ID, type=SignalRejected.event_type, time=rejected.rejected_at)
    return enforcer.signed(SIGNALS_REJECTED, str(rejected.rejection_id), rejected, envelope)


def consent_transform(enforcer: Enforcer, state: ConsentState, signals_key: Ed25519PublicKey) -> Transform:
    async def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        headers = list(record.headers)
        value = record.value or b""
        try:
            envelope = Envelope.from_headers(headers)
            verify_record([signals_key], value, headers)
            accepted = SignalAccepted.model_validate_json(value)
        except SignatureError as error:
            log.error("accepted_record_untrusted", offset=record.offset, reason=error.reason)
            return [_dead_letter(enforcer, record, RejectionReason(error.reason), str(error))]
        except (ValueError, ValidationError) as error:
            log.error("accepted_record_unreadable", offset=record.offset, error=type(error).__name__)
            return [_dead_letter(enforcer, record, RejectionReason.MALFORMED_EVENT, type(error).__name__)]
        bind_correlation_id(envelope.correlation_id)
        data_key = state.keys.data_key(accepted.subject_pseudonym)  # raises: abort and retry
        outgoing = enforcer.enforce(
            accepted,
            envelope.correlation_id,
            data_key,
            state.latest_agreements(),
            state.directives_of(accepted.subject_pseudonym),
        )
        log.info(
            "signal_enforced",
            signal_id=str(accepted.signal_id),
            deliveries=sum(1 for out in outgoing if out.topic.endswith(".signals.v1")),
        )
        return outgoing

    return transform


def consent_processor(
    settings: ConsentSettings, enforcer: Enforcer, state: ConsentState, signals_key: Ed25519PublicKey
) -> TransactionalProcessor:
    return TransactionalProcessor(
        settings,
        name=SERVICE_ID,
        topics=[SIGNALS_ACCEPTED.prefixed(settings.topic_prefix)],
        transactional_id=f"{SERVICE_ID}-{settings.instance_id}",
        transform=consent_transform(enforcer, state, signals_key),
        max_batch=settings.max_batch,
        # A change committed before this batch must apply to it ("takes effect at once").
        before_batch=state.catch_up,
    )
