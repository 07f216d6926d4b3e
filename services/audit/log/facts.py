"""Turn one Kafka record into one audit fact: metadata only, never payload values.

A fact records who (source, target), what (event type, category, fields *names*), why
(purpose, legal basis, agreement, decision and reasons), about whom (subject pseudonym) and
where it came from on Kafka (topic, partition, offset: also the idempotency key).

Every record is checked against the key of the party that must have written it (`WRITERS`;
a receipt against the partner it names): its `ce_source` (urn:nld:oin:<OIN>:systeem:<name>,
mapped to the organisation through the registry) must name one of those writers and that
writer's key must have signed the value and every ce_ header (shared.contracts.crypto.signing). A source
that is malformed or names no registered organisation is forged, like an unknown signer. A record
that fails is logged with the decision `forged` (`receipt-forged` for receipts) and the
decision it claimed in its reasons, never as the fact it claims to be; one whose writer's key
is not configured here is `unverifiable` (`receipt-unverifiable`). A record whose envelope or
value cannot be read at all is `unreadable` (unreadable_fact).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict

from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    PartySignature,
    SignatureType,
    SubjectDirectives,
)
from shared.contracts.envelope import ENVELOPE_PROBLEM, Envelope, Headers
from shared.contracts.events import (
    ERASURE_LEGAL_BASIS,
    AuditRead,
    ErasureForwarded,
    ErasureNotice,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectErased,
)
from shared.contracts.topics import event_types_on

if TYPE_CHECKING:
    from services.audit.log.record import AuditRecord


class AuditFact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    event_id: str
    event_time: datetime
    source: str
    target: str | None = None
    signal_id: str | None = None
    subject_pseudonym: str | None = None
    category: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    fields: tuple[str, ...] = ()
    delivery_id: str | None = None  # a partner's own id of a delivery or erasure notice
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    confidential_until: date | None = None  # withheld from the citizen's access report until then
    correlation_id: str
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int


FLAGGED_DECISIONS: Final = frozenset(
    {"forged", "unverifiable", "unreadable", "receipt-forged", "receipt-unverifiable"}
)
"""The decisions the log gives a record it could not believe (`_signature_verdict`,
`unreadable_fact`): kept as evidence, never a fact of what it claims."""


def is_fact(record: AuditFact | AuditRecord) -> bool:
    """Whether an audit record is a verified fact: its writer's key signed it on a topic its type
    belongs on, and it could be read. The one definition every view of the log uses (agreements,
    subject access report, timeline, dashboard, exports); the rest is for the integrity view."""
    return record.decision not in FLAGGED_DECISIONS


class UnreadableRecordError(ValueError):
    """The record is no event the audit log knows; it is logged as such, not dropped."""


PARTIES_PREFIX = "parties: "
"""The reason that lists an agreement change's parties (its providers and recipients), by id:
who may read the change in the log (shared/plumbing/policy.py, READ_AGREEMENT)."""


def parties_reason(agreement: Agreement) -> str:
    parties = {*agreement.providers, *(recipient.partner for recipient in agreement.recipients)}
    return PARTIES_PREFIX + ", ".join(sorted(parties))


def _signed_reasons(signatures: tuple[PartySignature, ...]) -> tuple[str, ...]:
    """Who signed what for each party: `approved by gm0363/f.fg` (or `rejected by ...`)."""
    words = {SignatureType.ACCEPT: "approved", SignatureType.REJECT: "rejected"}
    return tuple(
        f"{words[s.statement.type]} by {s.signed_by} for {s.statement.organisation}" for s in signatures
    )


def _agreement_change(agreement: Agreement, by: str) -> dict[str, Any]:
    """What every fact about an agreement change says: who, which version, on what basis."""
    return {
        "source": by,
        "target": "consent",
        "agreement_id": agreement.id,
        "agreement_version": agreement.version,
        "legal_basis": str(agreement.legal_basis),
    }


def _details(event_type: str, value: bytes) -> dict[str, Any]:
    if event_type == SignalAccepted.event_type:
        accepted = SignalAccepted.model_validate_json(value)
        return {
            "signal_id": str(accepted.signal_id),
            "subject_pseudonym": accepted.subject_pseudonym,
            "category": accepted.category.value,
            "purpose": accepted.purpose,
            "legal_basis": accepted.legal_basis,
            "source": accepted.municipality,
        }
    if event_type == SignalRejected.event_type:
        rejected = SignalRejected.model_validate_json(value)
        return {
            "signal_id": str(rejected.signal_id) if rejected.signal_id else None,
            "source": rejected.municipality or "unknown",
            "decision": "rejected",
            "reasons": tuple(f"{e.reason.value}:{e.location}" for e in rejected.errors),
        }
    if event_type == ExchangeDecided.event_type:
        decided = ExchangeDecided.model_validate_json(value)
        return {
            "signal_id": str(decided.signal_id),
            "subject_pseudonym": decided.subject_pseudonym,
            "source": decided.municipality,
            "target": decided.recipient,
            "category": decided.category.value,
            "purpose": decided.purpose,
            "legal_basis": decided.legal_basis,
            "agreement_id": decided.agreement_id,
            "agreement_version": decided.agreement_version,
            "fields": decided.fields,
            "decision": decided.decision.value,
            "reasons": decided.reasons,
            "delivery_id": str(decided.delivery_id) if decided.delivery_id else None,
            "confidential_until": decided.confidential_until,
        }
    if event_type == SignalDelivered.event_type:
        delivered = SignalDelivered.model_validate_json(value)
        return {
            "delivery_id": str(delivered.delivery_id),  # the decision's record leads to the signal
            "subject_pseudonym": delivered.partner_pseudonym,
            "source": delivered.municipality,
            "target": delivered.recipient,
            "purpose": delivered.purpose,
            "legal_basis": delivered.legal_basis,
            "agreement_id": delivered.agreement_id,
            "agreement_version": delivered.agreement_version,
            "fields": delivered.fields,
            "decision": "delivered",
        }
    if event_type == ExchangeReceipt.event_type:
        receipt = ExchangeReceipt.model_validate_json(value)
        acknowledged = receipt.delivery_id or receipt.notice_id
        return {
            "delivery_id": str(acknowledged) if acknowledged else None,
            "subject_pseudonym": receipt.partner_pseudonym,
            "source": receipt.recipient,
            "target": "consent",
            "agreement_id": receipt.agreement_id,
            "agreement_version": receipt.agreement_version,
            "decision": f"receipt-{receipt.status}",
            "reasons": (receipt.reason,) if receipt.reason else (),
        }
    if event_type == AgreementPublished.event_type:
        published = AgreementPublished.model_validate_json(value)
        agreement = published.agreement
        return {
            **_agreement_change(agreement, published.published_by),
            "decision": f"agreement-{agreement.status.value}",
            "reasons": (
                agreement.title,
                *((f"proposed by {published.proposed_by}",) if published.proposed_by else ()),
                *_signed_reasons(published.signatures),
                *(() if published.approved == agreement else (f"narrows v{published.approved.version}",)),
                f"content {published.approved.content_hash}",
                parties_reason(agreement),
            ),
        }
    if event_type == AgreementProposed.event_type:
        proposal = AgreementProposed.model_validate_json(value)
        return {
            **_agreement_change(proposal.agreement, proposal.organisation),
            "decision": f"proposal-{proposal.status.value}",
            "reasons": (
                proposal.agreement.title,
                f"proposed by {proposal.proposed_by}",
                *((f"{proposal.status.value} by {proposal.decided_by}",) if proposal.decided_by else ()),
                *(f"widens: {what}" for what in proposal.widens),
                *_signed_reasons(proposal.signatures),
                *(f"awaiting {party}" for party in sorted(proposal.awaiting)),
                f"content {proposal.content_hash}",
                parties_reason(proposal.agreement),
            ),
        }
    if event_type == SubjectDirectives.event_type:
        directives = SubjectDirectives.model_validate_json(value)
        latest = directives.directives[-1] if directives.directives else None
        return {
            "subject_pseudonym": directives.subject_pseudonym,
            "source": latest.recorded_by if latest else "consent",
            "target": "consent",
            "agreement_id": latest.scope.agreement_id if latest else None,
            "category": latest.scope.category.value if latest and latest.scope.category else None,
            "decision": f"directive-{latest.kind.value}" if latest else "directives-cleared",
            "reasons": (f"by {latest.actor}",) if latest and latest.actor else (),
        }
    if event_type == SubjectErased.event_type:
        erased = SubjectErased.model_validate_json(value)
        return {
            "subject_pseudonym": erased.subject_pseudonym,
            "source": erased.requested_by,
            "target": "signals",
            "decision": "erased" if erased.had_data_key else "erased-without-key",
            "reasons": (f"by {erased.actor}",) if erased.actor else (),
        }
    if event_type == ErasureForwarded.event_type:
        forwarded = ErasureForwarded.model_validate_json(value)
        return {
            "subject_pseudonym": forwarded.subject_pseudonym,
            "source": "consent",
            "target": forwarded.recipient,
            "legal_basis": ERASURE_LEGAL_BASIS,
            "decision": "erasure-forwarded",
            "delivery_id": str(forwarded.notice_id),
        }
    if event_type == ErasureNotice.event_type:
        notice = ErasureNotice.model_validate_json(value)
        return {
            "subject_pseudonym": notice.partner_pseudonym,
            "source": "consent",
            "target": notice.recipient,
            "legal_basis": notice.legal_basis,
            "decision": "erasure-notified",
            "delivery_id": str(notice.notice_id),  # the forwarding record leads to the erasure
        }
    if event_type == AuditRead.event_type:
        read = AuditRead.model_validate_json(value)
        return {
            "source": read.reader,
            "target": "audit",
            "subject_pseudonym": read.filter.get("subject"),
            "decision": "read",
            "reasons": (
                f"by {read.actor}",
                f"scope {read.scope}",
                *(f"{name}={value}" for name, value in sorted(read.filter.items())),
                f"{read.results} records",
            ),
        }
    raise UnreadableRecordError(f"unknown event type {event_type!r}")


SignatureCheck = Callable[[str, bytes, Headers], bool | None]
"""(claimed signer, value, headers) -> whether that organisation's key signed the record;
None when the signer's key is unknown, so the signature cannot be checked."""

SourceLookup = Callable[[str], str | None]
"""A record's ce_source -> the id of the organisation it names (through the registry), or None
when it is malformed or names no registered organisation."""

WRITERS: dict[str, frozenset[str]] = {
    SignalAccepted.event_type: frozenset({"signals"}),  # services/signals/intake.py
    SignalRejected.event_type: frozenset({"signals", "consent"}),  # intake, and consent's dead letters
    ExchangeDecided.event_type: frozenset({"consent"}),  # services/consent/enforcement.py
    SignalDelivered.event_type: frozenset({"consent"}),  # services/consent/enforcement.py
    AgreementPublished.event_type: frozenset({"consent"}),  # services/consent/admin.py, on request
    SubjectDirectives.event_type: frozenset({"consent"}),  # services/consent/directives.py, on request
    SubjectErased.event_type: frozenset({"signals"}),  # services/signals/erasure.py
    ErasureForwarded.event_type: frozenset({"consent"}),  # services/consent/enforcement.py
    ErasureNotice.event_type: frozenset({"consent"}),  # services/consent/enforcement.py
    AgreementProposed.event_type: frozenset({"consent"}),  # services/consent/admin.py, on request
    AuditRead.event_type: frozenset({"audit"}),  # services/audit/http.py, every read
}
"""Who may sign each event (a receipt: the partner that is its `recipient`)."""


def _writers(event_type: str, details: dict[str, Any]) -> frozenset[str]:
    if event_type == ExchangeReceipt.event_type:
        return frozenset({details["source"]})
    # An event nobody is listed for has no genuine writer: flagged, never a crash of the subscriber.
    return WRITERS.get(event_type, frozenset())


def _signature_verdict(
    envelope: Envelope,
    details: dict[str, Any],
    value: bytes,
    headers: Headers,
    signed_by: SignatureCheck | None,
    claimed: str | None,
    misplaced: str | None = None,
) -> str | None:
    """None when the record's writer signed it on a topic its type belongs on; else the
    decision to log and why. `claimed`: the organisation the record's ce_source names."""
    prefix = "receipt-" if envelope.type == ExchangeReceipt.event_type else ""
    writers = _writers(envelope.type, details)
    if misplaced is not None:
        # A genuine record replayed onto another topic is no fact of that topic either.
        problem = misplaced
        genuine: bool | None = False
    elif claimed is None:
        # Not echoed: a source that is not ours may carry anything.
        problem = "ce_source names no registered organisation (urn:nld:oin:<OIN>:systeem:<name>)"
        genuine = False
    elif claimed not in writers:
        problem = f"ce_source {claimed} may not write {envelope.type}"
        genuine = False
    else:
        assert signed_by is not None  # called without a check only for a misplaced record
        genuine = signed_by(claimed, value, headers)
        problem = f"not signed by {claimed}" if genuine is False else f"no key of {claimed}"
    if genuine:
        return None
    verdict = f"{prefix}forged" if genuine is False else f"{prefix}unverifiable"
    details["reasons"] = (
        problem,
        f"claimed {details.get('decision') or 'fact'}",
        *details.get("reasons", ()),
    )
    details["decision"] = verdict
    return verdict


def fact_from_record(
    topic: str,
    partition: int,
    offset: int,
    headers: Headers,
    value: bytes,
    signed_by: SignatureCheck | None = None,
    topic_prefix: str = "",
    sources: SourceLookup | None = None,
) -> AuditFact:
    """The fact a record states. With `signed_by` (and `sources`, which maps its ce_source to
    an organisation) its writer is checked; without, only whether its type belongs on `topic`."""
    assert signed_by is None or sources is not None, "a signature check needs the source lookup"
    try:
        envelope = Envelope.from_headers(headers)
    except ValueError as error:  # its message may quote a header the record carried: not kept
        raise UnreadableRecordError(ENVELOPE_PROBLEM) from error
    try:
        details = _details(envelope.type, value)
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise UnreadableRecordError(str(error).splitlines()[0]) from error
    claimed = sources(envelope.source) if sources is not None else None
    details.setdefault("source", claimed or "unknown")
    misplaced = (
        None
        if envelope.type in event_types_on(topic, topic_prefix)
        else f"{envelope.type} does not belong on {topic.removeprefix(topic_prefix)}"
    )
    verdict = (
        _signature_verdict(envelope, details, value, headers, signed_by, claimed, misplaced)
        if signed_by or misplaced
        else None
    )
    event_time = envelope.time
    if event_time is None:
        if verdict is None:
            raise UnreadableRecordError("the record carries no ce_time")  # every producer writes one
        event_time = datetime.now(UTC)  # a flagged record: when the log saw it
    return AuditFact(
        event_type=envelope.type,
        event_id=envelope.id,
        event_time=event_time,
        correlation_id=envelope.correlation_id,
        kafka_topic=topic,
        kafka_partition=partition,
        kafka_offset=offset,
        **details,
    )


_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def _plain_id(headers: Headers) -> str:
    """The record's ce_id when it is one, plain and short (as every producer here writes it);
    else \"unknown\": an unreadable record's header is kept only if it can carry nothing else."""
    values = [value for name, value in headers if name == "ce_id"]
    if len(values) != 1 or not isinstance(values[0], bytes) or not 0 < len(values[0]) <= 64:
        return "unknown"
    text = values[0].decode("ascii", errors="replace")
    return text if set(text) <= _ID_CHARACTERS else "unknown"


def unreadable_fact(topic: str, partition: int, offset: int, headers: Headers, problem: str) -> AuditFact:
    """What the log keeps of a record it cannot read: provenance and the problem, nothing else."""
    return AuditFact(
        event_type="nl.safetychain.audit.unreadable.v1",
        event_id=_plain_id(headers),
        event_time=datetime.now(UTC),
        source="unknown",
        decision="unreadable",
        reasons=(problem[:300],),
        correlation_id="0" * 32,
        kafka_topic=topic,
        kafka_partition=partition,
        kafka_offset=offset,
    )
