"""The decision: a pure function of (signal, recipient, agreements, directives, now).

Deny by default. A recipient may receive a signal only under an agreement that
  - is active (not suspended) and valid at the moment of deciding,
  - names the recipient, the signal's municipality as provider, its category and its purpose,
  - has the subject's consent, where the agreement requires it, and
  - is not blocked by the subject's objection (unless its legal basis overrides objections).
When several agreements permit, the one sharing the fewest fields applies (data minimisation;
ties by agreement id). Every agreement considered leaves a reason, so each outcome explains
itself ("why was partner X refused?"): a code with parameters (shared/contracts/reasons.py),
written as its fixed English sentence, which the audit console reads back and translates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.contracts.agreements import Agreement, AgreementStatus, Directive, standing
from shared.contracts.events import Decision
from shared.contracts.reasons import Reason, ReasonCode, refusal
from shared.contracts.signal import Category


@dataclass(frozen=True)
class SignalFacts:
    """What the decision may look at: metadata only, never the personal payload."""

    municipality: str
    category: Category
    purpose: str


@dataclass(frozen=True)
class Obligations:
    """What the recipient must honour, carried with the delivery."""

    fields: tuple[str, ...]
    identifying: bool
    retention_days: int
    purpose: str
    legal_basis: str


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reasons: tuple[str, ...]
    agreement: Agreement | None = None
    obligations: Obligations | None = None
    confidential_days: int | None = None  # withheld from the citizen's access report this long

    def confidential_until(self, decided_at: datetime) -> date | None:
        if self.confidential_days is None:
            return None
        return decided_at.date() + timedelta(days=self.confidential_days)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.obligations.fields if self.obligations else ()


def _failures(agreement: Agreement, facts: SignalFacts, now: datetime) -> list[Reason]:
    failures = []
    if agreement.status is not AgreementStatus.ACTIVE:  # suspended or revoked: deny by default
        failures.append(Reason(ReasonCode(agreement.status.value)))
    if facts.municipality not in agreement.providers:
        failures.append(Reason(ReasonCode.NOT_A_PROVIDER, {"municipality": facts.municipality}))
    if facts.category not in agreement.categories:
        failures.append(Reason(ReasonCode.CATEGORY_NOT_COVERED, {"category": facts.category.value}))
    if facts.purpose not in agreement.purposes:
        failures.append(Reason(ReasonCode.PURPOSE_NOT_COVERED, {"purpose": facts.purpose}))
    if not agreement.valid_at(now):
        failures.append(Reason(ReasonCode.NOT_VALID, {"date": now.date().isoformat()}))
    return failures


def _subject_failures(
    agreement: Agreement, facts: SignalFacts, directives: tuple[Directive, ...]
) -> tuple[list[Reason], list[Reason]]:
    """(failures, notes) from the subject's directives that govern what the signal's
    municipality provided (its own and the platform's: `standing`)."""
    consent, objection = standing(directives, agreement.id, facts.category, facts.municipality)
    failures: list[Reason] = []
    notes: list[Reason] = []
    if agreement.requires_subject_consent and consent != "given":
        withdrawn = consent == "withdrawn"
        failures.append(Reason(ReasonCode.CONSENT_WITHDRAWN if withdrawn else ReasonCode.CONSENT_ABSENT))
    if objection:
        if agreement.objection_blocks:
            failures.append(Reason(ReasonCode.OBJECTED))
        else:
            basis = {"legal_basis": str(agreement.legal_basis)}
            notes.append(Reason(ReasonCode.OBJECTION_OVERRIDDEN, basis))
    return failures, notes


def decide(
    facts: SignalFacts,
    recipient: str,
    agreements: list[Agreement],
    now: datetime,
    directives: tuple[Directive, ...] = (),
) -> Outcome:
    naming = sorted(
        (agreement for agreement in agreements if agreement.recipient(recipient) is not None),
        key=lambda a: (a.id, a.version),
    )
    if not naming:
        return Outcome(Decision.DENY, (Reason(ReasonCode.NO_AGREEMENT, {"recipient": recipient}).text,))
    # A refusal is as confidential as the most protective agreement naming the recipient: that
    # the police were considered is itself what the marking protects.
    strictest = max((_confidential_days(a, recipient) or 0 for a in naming), default=0) or None
    refusals: list[str] = []
    permits: list[tuple[Agreement, list[Reason]]] = []
    for agreement in naming:
        failures = _failures(agreement, facts, now)
        notes: list[Reason] = []
        if not failures:
            failures, notes = _subject_failures(agreement, facts, directives)
        if failures:
            refusals.append(refusal(agreement.id, agreement.version, failures))
        else:
            permits.append((agreement, notes))
    if not permits:
        return Outcome(Decision.DENY, tuple(refusals), confidential_days=strictest)
    chosen, notes = min(permits, key=lambda p: (len(_fields(p[0], recipient)), p[0].id))
    permitted = {
        "agreement": chosen.label,
        "recipient": recipient,
        "category": facts.category.value,
        "purpose": facts.purpose,
    }
    reasons = [Reason(ReasonCode.PERMITTED, permitted).text]
    reasons += [note.text for note in notes]
    reasons += [
        Reason(ReasonCode.ALSO_PERMITS, {"agreement": other.label}).text
        for other, _ in permits
        if other is not chosen
    ]
    obligations = Obligations(
        fields=_fields(chosen, recipient),
        identifying=chosen.identifying,
        retention_days=chosen.retention_days,
        purpose=facts.purpose,
        legal_basis=str(chosen.legal_basis),
    )
    return Outcome(
        Decision.PERMIT, tuple(reasons), chosen, obligations, _confidential_days(chosen, recipient)
    )


def _confidential_days(agreement: Agreement, recipient: str) -> int | None:
    allowed = agreement.recipient(recipient)
    assert allowed is not None
    return allowed.confidential_days


def _fields(agreement: Agreement, recipient: str) -> tuple[str, ...]:
    allowed = agreement.recipient(recipient)
    assert allowed is not None
    return allowed.fields
