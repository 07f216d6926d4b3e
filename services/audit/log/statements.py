"""What each event states, as the audit log keeps it: metadata only, never payload values.

One function per event type, from the event (its value, validated against its contract) to a
`Statement`: who (source, target), what (category, field *names*), why (purpose, legal basis,
agreement, decision and reasons) and about whom (a pseudonym). The catalogue (catalogue.py)
names the function for each type; facts.py adds what the envelope and Kafka say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, get_args

from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    DirectiveKind,
    PartySignature,
    ProposalStatus,
    SignatureType,
    SubjectDirectives,
)
from shared.contracts.events import (
    ERASURE_LEGAL_BASIS,
    AuditFailover,
    AuditRead,
    Decision,
    ErasureForwarded,
    ErasureNotice,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectErased,
)

DECISIONS: Final[frozenset[str]] = frozenset(
    {
        *(decision.value for decision in Decision),
        "rejected",
        "delivered",
        *(f"receipt-{status}" for status in get_args(ExchangeReceipt.model_fields["status"].annotation)),
        *(f"agreement-{status.value}" for status in AgreementStatus),
        *(f"proposal-{status.value}" for status in ProposalStatus),
        *(f"directive-{kind.value}" for kind in DirectiveKind),
        "directives-cleared",
        "erased",
        "erased-without-key",
        "erasure-forwarded",
        "erasure-notified",
        "read",
        "failover",
    }
)
"""Every `decision` a statement below gives (tests/unit/test_console_vocabulary.py holds each
literal here to this set, and the console's vocabulary names each one)."""


@dataclass(frozen=True)
class Statement:
    """The fields of an audit fact that a record's value states (services.audit.log.facts.AuditFact
    has the same names). `source` is the organisation the value names: its writer, or the
    organisation on whose request it was written."""

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
    confidential_until: date | None = None


PARTIES_PREFIX: Final = "parties: "
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


def accepted(event: SignalAccepted) -> Statement:
    return Statement(
        signal_id=str(event.signal_id),
        subject_pseudonym=event.subject_pseudonym,
        category=event.category.value,
        purpose=event.purpose,
        legal_basis=event.legal_basis,
        source=event.municipality,
    )


def rejected(event: SignalRejected) -> Statement:
    return Statement(
        signal_id=str(event.signal_id) if event.signal_id else None,
        source=event.municipality or "unknown",
        decision="rejected",
        reasons=tuple(f"{e.reason.value}:{e.location}" for e in event.errors),
    )


def decided(event: ExchangeDecided) -> Statement:
    return Statement(
        signal_id=str(event.signal_id),
        subject_pseudonym=event.subject_pseudonym,
        source=event.municipality,
        target=event.recipient,
        category=event.category.value,
        purpose=event.purpose,
        legal_basis=event.legal_basis,
        agreement_id=event.agreement_id,
        agreement_version=event.agreement_version,
        fields=event.fields,
        decision=event.decision.value,
        reasons=event.reasons,
        delivery_id=str(event.delivery_id) if event.delivery_id else None,
        confidential_until=event.confidential_until,
    )


def delivered(event: SignalDelivered) -> Statement:
    return Statement(
        delivery_id=str(event.delivery_id),  # the decision's record leads to the signal
        subject_pseudonym=event.partner_pseudonym,
        source=event.municipality,
        target=event.recipient,
        purpose=event.purpose,
        legal_basis=event.legal_basis,
        agreement_id=event.agreement_id,
        agreement_version=event.agreement_version,
        fields=event.fields,
        decision="delivered",
    )


def receipt(event: ExchangeReceipt) -> Statement:
    acknowledged = event.delivery_id or event.notice_id
    return Statement(
        delivery_id=str(acknowledged) if acknowledged else None,
        subject_pseudonym=event.partner_pseudonym,
        source=event.recipient,
        target="consent",
        agreement_id=event.agreement_id,
        agreement_version=event.agreement_version,
        decision=f"receipt-{event.status}",
        reasons=(event.reason,) if event.reason else (),
    )


def _agreement_change(agreement: Agreement, by: str, decision: str, reasons: tuple[str, ...]) -> Statement:
    """What every fact about an agreement change says: who, which version, on what basis."""
    return Statement(
        source=by,
        target="consent",
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        legal_basis=str(agreement.legal_basis),
        decision=decision,
        reasons=reasons,
    )


def published(event: AgreementPublished) -> Statement:
    agreement = event.agreement
    return _agreement_change(
        agreement,
        event.published_by,
        f"agreement-{agreement.status.value}",
        (
            agreement.title,
            *((f"proposed by {event.proposed_by}",) if event.proposed_by else ()),
            *_signed_reasons(event.signatures),
            *(() if event.approved == agreement else (f"narrows v{event.approved.version}",)),
            f"content {event.approved.content_hash}",
            parties_reason(agreement),
        ),
    )


def proposed(event: AgreementProposed) -> Statement:
    agreement = event.agreement
    return _agreement_change(
        agreement,
        event.organisation,
        f"proposal-{event.status.value}",
        (
            agreement.title,
            f"proposed by {event.proposed_by}",
            *((f"{event.status.value} by {event.decided_by}",) if event.decided_by else ()),
            *(f"widens: {what}" for what in event.widens),
            *_signed_reasons(event.signatures),
            *(f"awaiting {party}" for party in sorted(event.awaiting)),
            f"content {event.content_hash}",
            parties_reason(agreement),
        ),
    )


def directives(event: SubjectDirectives) -> Statement:
    latest = event.directives[-1] if event.directives else None
    return Statement(
        subject_pseudonym=event.subject_pseudonym,
        source=latest.recorded_by if latest else "consent",
        target="consent",
        agreement_id=latest.scope.agreement_id if latest else None,
        category=latest.scope.category.value if latest and latest.scope.category else None,
        decision=f"directive-{latest.kind.value}" if latest else "directives-cleared",
        reasons=(f"by {latest.actor}",) if latest and latest.actor else (),
    )


def erased(event: SubjectErased) -> Statement:
    return Statement(
        subject_pseudonym=event.subject_pseudonym,
        source=event.requested_by,
        target="signals",
        decision="erased" if event.had_data_key else "erased-without-key",
        reasons=(f"by {event.actor}",) if event.actor else (),
    )


def forwarded(event: ErasureForwarded) -> Statement:
    return Statement(
        subject_pseudonym=event.subject_pseudonym,
        source="consent",
        target=event.recipient,
        legal_basis=ERASURE_LEGAL_BASIS,
        decision="erasure-forwarded",
        delivery_id=str(event.notice_id),
    )


def notice(event: ErasureNotice) -> Statement:
    return Statement(
        subject_pseudonym=event.partner_pseudonym,
        source="consent",
        target=event.recipient,
        legal_basis=event.legal_basis,
        decision="erasure-notified",
        delivery_id=str(event.notice_id),  # the forwarding record leads to the erasure
    )


def read(event: AuditRead) -> Statement:
    return Statement(
        source=event.reader,
        target="audit",
        subject_pseudonym=event.filter.get("subject"),
        decision="read",
        reasons=(
            f"by {event.actor}",
            f"scope {event.scope}",
            *(f"{name}={value}" for name, value in sorted(event.filter.items())),
            f"{event.results} records",
        ),
    )


def failover(event: AuditFailover) -> Statement:
    return Statement(
        source="audit",
        target="audit",
        decision="failover",
        reasons=(
            f"from {event.previous_holder}",
            f"to {event.holder}",
            f"epoch {event.epoch}",
            f"continued from {event.continued_from} records",
        ),
    )
