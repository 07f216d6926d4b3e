"""The subject access report (AVG art. 15): who received what about one person, when, why.

Built from the audit records about one subject within the reader's scope (the store follows a
decision's delivery id to the partner's own records: delivery, receipt, erasure notice). Per
recipient: every decision (permitted or refused) with its category, the field *names* shared,
agreement, purpose, legal basis, reasons, delivery and whether the recipient confirmed receipt;
and the subject's own directives (consent, objection) and erasures.

Two versions. The privacy officer's shows everything in scope, marking what is confidential.
The citizen's leaves out exchanges an agreement marks confidential (police, public prosecutor)
until their release date, and every person's name (who recorded, who read), as the VNG
Verwerkingenlogging standard does for a citizen-facing read (`vertrouwelijkheid`, no
`gebruiker`). It does not say that anything was left out: that would disclose what it protects.

Only verified facts feed it (services.audit.log.facts.is_fact): a record the log flagged as forged,
unverifiable or unreadable is no exchange, signal, directive or erasure of this person.

A partner's officer sees no decisions, only what reached the partner: its report holds its
deliveries (with their receipts) and erasure notices, under its own pseudonym, each delivery as
confidential as the decision behind it (`confidential_until`, which the caller looks up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from services.audit.log.catalogue import Role
from services.audit.log.facts import is_fact
from services.audit.log.record import AuditRecord
from services.audit.queries.exports.confidentiality import (
    Vertrouwelijkheid,
    confidentiality_until,
    vertrouwelijkheid,
)


class Version(StrEnum):
    CITIZEN = "citizen"
    OFFICER = "officer"


class Exchange(BaseModel):
    """One decision about sharing a signal about the subject with one recipient."""

    decided_at: datetime
    provider: str = Field(description="The municipality whose signal it was.")
    category: str | None
    fields: list[str] = Field(description="Names of the fields shared; never values.")
    agreement_id: str | None
    agreement_version: int | None
    purpose: str | None
    legal_basis: str | None
    decision: str = Field(description="permit or deny.")
    reasons: list[str]
    delivered_at: datetime | None = None
    receipt: str | None = Field(default=None, description="opened, refused (by the recipient), or none yet.")
    receipt_at: datetime | None = None
    confidentiality: Vertrouwelijkheid = Vertrouwelijkheid.NORMAAL
    confidential_until: date | None = None
    records: list[int] = Field(description="The audit records (seq) of this exchange, each provable.")


class ErasureNotice(BaseModel):
    notified_at: datetime
    confirmed: bool
    records: list[int]


class RecipientSection(BaseModel):
    recipient: str
    name: str
    exchanges: list[Exchange]
    erasure_notices: list[ErasureNotice] = []


class SignalAbout(BaseModel):
    """A signal a municipality submitted about the subject."""

    accepted_at: datetime
    provider: str
    category: str | None
    purpose: str | None
    legal_basis: str | None = Field(description="The municipality's claim, if it named one.")
    shared_under: list[str] = Field(
        default=[],
        description="The legal bases of the agreements it was shared under, in this version of the"
        " report (consent decides per recipient).",
    )
    decided: bool = Field(default=False, description="Whether this version holds a decision on it.")
    records: list[int]


class DirectiveEntry(BaseModel):
    recorded_at: datetime
    kind: str = Field(description="consent_given, consent_withdrawn, objection, objection_withdrawn.")
    recorded_by: str
    agreement_id: str | None
    category: str | None
    actor: str | None = Field(default=None, description="Who recorded it (officer's version only).")
    records: list[int]


class ErasureEntry(BaseModel):
    erased_at: datetime
    requested_by: str
    had_data: bool
    records: list[int]


class SubjectAccessReport(BaseModel):
    version: Version
    subject: str = Field(description="The subject's pseudonym (never the BSN).")
    scope: str = Field(description="Whose records: an organisation, or * for the whole log.")
    generated_at: datetime
    log_size: int
    checkpoint_size: int | None = Field(description="The newest checkpoint; proofs refer to it.")
    signals: list[SignalAbout]
    recipients: list[RecipientSection]
    directives: list[DirectiveEntry]
    erasures: list[ErasureEntry]
    withheld: int = Field(
        default=0, description="Officer's version: exchanges the citizen's version leaves out."
    )

    @property
    def exchange_count(self) -> int:
        return sum(len(section.exchanges) for section in self.recipients)


def _actor(reasons: Iterable[str]) -> str | None:
    return next((reason.removeprefix("by ") for reason in reasons if reason.startswith("by ")), None)


def build_report(
    records: list[AuditRecord],
    *,
    subject: str,
    scope: str,
    names: Mapping[str, str],
    version: Version,
    today: date,
    generated_at: datetime,
    log_size: int,
    checkpoint_size: int | None,
    confidential_until: Mapping[str, date | None] | None = None,
) -> SubjectAccessReport:
    """The report from the subject's records (as `AuditStore.records(RecordQuery(subject=...))`
    returns them: the subject's own records plus the partner-side records linked to them).
    `confidential_until`: by delivery id, the date of the decision behind a delivery whose
    decision is not among `records` (a partner's report)."""
    records = [record for record in records if is_fact(record)]
    by_delivery: dict[str, list[AuditRecord]] = {}
    decided: set[str] = set()
    forwarded: set[str] = set()
    for record in records:
        if record.delivery_id and record.role is not Role.DECISION:
            by_delivery.setdefault(record.delivery_id, []).append(record)
        elif record.delivery_id:
            decided.add(record.delivery_id)
        if record.role is Role.NOTICE_SENT and record.delivery_id:
            forwarded.add(record.delivery_id)

    sections: dict[str, RecipientSection] = {}
    withheld = 0
    hidden: set[str] = set()

    def section(recipient: str) -> RecipientSection:
        return sections.setdefault(
            recipient,
            RecipientSection(recipient=recipient, name=names.get(recipient, recipient), exchanges=[]),
        )

    signals: list[tuple[AuditRecord, SignalAbout]] = []
    bases: dict[str, set[str]] = {}  # signal id -> legal bases it was shared under (as shown)
    decided_on: set[str] = set()
    directives: list[DirectiveEntry] = []
    erasures: list[ErasureEntry] = []
    for record in records:
        decision = record.decision or ""
        if record.role is Role.DECISION and decision in ("permit", "deny") and record.target:
            level = vertrouwelijkheid(record, today)
            if level is Vertrouwelijkheid.VERTROUWELIJK:
                withheld += 1
                hidden.add(record.target)
                if version is Version.CITIZEN:
                    continue
            exchange = _exchange(record, by_delivery.get(record.delivery_id or "", []), level)
            section(record.target).exchanges.append(exchange)
            if record.signal_id:
                decided_on.add(record.signal_id)
                if decision == "permit" and record.legal_basis:
                    bases.setdefault(record.signal_id, set()).add(record.legal_basis)
        elif record.role is Role.DELIVERY and record.delivery_id not in decided and record.target:
            # what reached a partner whose reader does not see the decision behind it
            until = (confidential_until or {}).get(record.delivery_id or "")
            level = confidentiality_until(until, today)
            if level is Vertrouwelijkheid.VERTROUWELIJK:
                withheld += 1
                hidden.add(record.target)
                if version is Version.CITIZEN:
                    continue
            linked = by_delivery.get(record.delivery_id or "", [])  # the delivery itself, its receipt
            permitted = record.model_copy(update={"decision": "permit", "confidential_until": until})
            exchange = _exchange(permitted, linked, level)
            section(record.target).exchanges.append(exchange)
        elif record.role is Role.SIGNAL:
            about = SignalAbout(
                accepted_at=record.event_time,
                provider=record.source,
                category=record.category,
                purpose=record.purpose,
                legal_basis=record.legal_basis,
                records=[record.seq],
            )
            signals.append((record, about))
        elif record.role is Role.DIRECTIVE and decision.startswith("directive-"):
            directives.append(
                DirectiveEntry(
                    recorded_at=record.event_time,
                    kind=decision.removeprefix("directive-"),
                    recorded_by=record.source,
                    agreement_id=record.agreement_id,
                    category=record.category,
                    actor=_actor(record.reasons) if version is Version.OFFICER else None,
                    records=[record.seq],
                )
            )
        elif record.role is Role.ERASURE:
            erasures.append(
                ErasureEntry(
                    erased_at=record.event_time,
                    requested_by=record.source,
                    had_data=decision == "erased",
                    records=[record.seq],
                )
            )
        elif (
            record.role is Role.NOTICE_SENT
            or (record.role is Role.NOTICE and record.delivery_id not in forwarded)
        ) and record.target:
            linked = by_delivery.get(record.delivery_id or "", [])
            confirmed = any(r.decision == "receipt-erased" for r in linked)
            section(record.target).erasure_notices.append(
                ErasureNotice(
                    notified_at=record.event_time,
                    confirmed=confirmed,
                    records=sorted({record.seq, *(r.seq for r in linked)}),
                )
            )
    if version is Version.CITIZEN:
        # A notice of erasure to a recipient the citizen sees nothing else of would name it.
        for target in hidden & sections.keys():
            if not sections[target].exchanges:
                sections[target].erasure_notices = []
    return SubjectAccessReport(
        version=version,
        subject=subject,
        scope=scope,
        generated_at=generated_at,
        log_size=log_size,
        checkpoint_size=checkpoint_size,
        signals=[
            about.model_copy(
                update={
                    "shared_under": sorted(bases.get(record.signal_id or "", ())),
                    "decided": record.signal_id in decided_on,
                }
            )
            for record, about in signals
        ],
        recipients=sorted(
            (s for s in sections.values() if s.exchanges or s.erasure_notices), key=lambda s: s.name
        ),
        directives=directives,
        erasures=erasures,
        withheld=withheld if version is Version.OFFICER else 0,
    )


def _exchange(decided: AuditRecord, linked: list[AuditRecord], level: Vertrouwelijkheid) -> Exchange:
    delivered = next((r for r in linked if r.role is Role.DELIVERY), None)
    receipt = next(
        (r for r in linked if r.decision in ("receipt-opened", "receipt-refused")),
        None,
    )
    return Exchange(
        decided_at=decided.event_time,
        provider=decided.source,
        category=decided.category,
        fields=list(decided.fields),
        agreement_id=decided.agreement_id,
        agreement_version=decided.agreement_version,
        purpose=decided.purpose,
        legal_basis=decided.legal_basis,
        decision=decided.decision,
        reasons=list(decided.reasons),
        delivered_at=delivered.event_time if delivered else None,
        receipt=(receipt.decision or "").removeprefix("receipt-") if receipt else None,
        receipt_at=receipt.event_time if receipt else None,
        confidentiality=level,
        confidential_until=decided.confidential_until,
        records=sorted({decided.seq, *(r.seq for r in linked)}),
    )
