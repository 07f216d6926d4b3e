"""The decision: a pure function of (signal facts, recipient, agreements, now).

Deny by default. A recipient receives a signal only when an agreement names it as recipient,
names the signal's municipality as provider, covers its category and purpose, and is valid at
the moment of deciding. Every agreement considered leaves a reason, so the outcome explains
itself ("why was partner X refused?").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.consent.agreements import Agreement
from shared.contracts.events import Decision
from shared.contracts.signal import Category


@dataclass(frozen=True)
class SignalFacts:
    """What the decision may look at: metadata only, never the personal payload."""

    municipality: str
    category: Category
    purpose: str


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reasons: tuple[str, ...]
    agreement: Agreement | None = None
    fields: tuple[str, ...] = ()


def _failures(agreement: Agreement, facts: SignalFacts, now: datetime) -> list[str]:
    failures = []
    if facts.municipality not in agreement.providers:
        failures.append(f"municipality {facts.municipality} is not a provider")
    if facts.category not in agreement.categories:
        failures.append(f"category {facts.category.value} is not covered")
    if facts.purpose not in agreement.purposes:
        failures.append(f"purpose {facts.purpose} is not covered")
    if not agreement.valid_at(now):
        failures.append(f"not valid on {now.date().isoformat()}")
    return failures


def decide(facts: SignalFacts, recipient: str, agreements: list[Agreement], now: datetime) -> Outcome:
    naming = [agreement for agreement in agreements if agreement.recipient(recipient) is not None]
    if not naming:
        return Outcome(Decision.DENY, (f"no agreement names {recipient} as recipient",))
    reasons: list[str] = []
    for agreement in sorted(naming, key=lambda a: (a.id, a.version)):
        label = f"agreement {agreement.id} v{agreement.version}"
        failures = _failures(agreement, facts, now)
        if failures:
            reasons.append(f"{label}: {'; '.join(failures)}")
            continue
        allowed = agreement.recipient(recipient)
        assert allowed is not None
        return Outcome(
            Decision.PERMIT,
            (f"{label} permits {recipient} to receive {facts.category.value} for {facts.purpose}",),
            agreement=agreement,
            fields=allowed.fields,
        )
    return Outcome(Decision.DENY, tuple(reasons))
