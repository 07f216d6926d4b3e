"""What the board asks: how much flows to whom, and how much is refused and why.

Counted from the audit records in the reader's scope over a period: permitted exchanges per day
per recipient, refusals per reason (consent's denials and signals' rejections at intake). A
partner's scope holds no decisions, only what reached it: its exchanges are its deliveries
(each permit is delivered in the same transaction, so both count the same exchanges).
Metadata only; a reason is a fixed category, never free text from a record. Verified facts only
(services.audit.log.facts.is_fact): a forged rejection or decision counts for nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from services.audit.log.catalogue import Role
from services.audit.log.facts import is_fact
from services.audit.log.record import AuditRecord

REFUSAL_REASONS: tuple[tuple[str, str], ...] = (
    # (fragment of consent's reason, category): the first that matches
    ("no agreement names", "no_agreement"),
    ("objected", "objection"),
    ("consent is required", "no_consent"),
    ("suspended", "suspended"),
    ("revoked", "revoked"),
    ("is not covered", "not_covered"),
    ("is not a provider", "not_a_provider"),
    ("not valid on", "not_in_force"),
)


def refusal_reason(record: AuditRecord) -> str:
    """The category of a refusal: intake's reason code, or consent's reason by its wording."""
    if record.role is Role.REFUSAL:
        reasons = record.reasons or ("unknown",)
        return "intake:" + reasons[0].split(":", 1)[0]
    text = " ".join(record.reasons)
    return next((category for fragment, category in REFUSAL_REASONS if fragment in text), "other")


@dataclass(frozen=True)
class Statistics:
    days: list[date]
    recipients: list[str]
    per_day: dict[str, list[int]]  # recipient -> permitted exchanges per day (aligned with days)
    refusals: dict[str, int]  # reason -> count, most first
    permitted: int
    refused: int
    rejected_at_intake: int


def count(records: Iterable[AuditRecord], first: date, last: date, by_deliveries: bool = False) -> Statistics:
    """Counts over the decision and rejection records from `first` to `last` (inclusive); with
    `by_deliveries` (a partner's dashboard) the exchanges are counted from the deliveries."""
    exchange = (Role.DELIVERY, "delivered") if by_deliveries else (Role.DECISION, "permit")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    index = {day: position for position, day in enumerate(days)}
    per_day: dict[str, list[int]] = {}
    refusals: Counter[str] = Counter()
    permitted = refused = rejected = 0
    for record in records:
        day = date.fromisoformat(record.event_time[:10])
        if day not in index or not is_fact(record):
            continue
        if (record.role, record.decision) == exchange and record.target:
            per_day.setdefault(record.target, [0] * len(days))[index[day]] += 1
            permitted += 1
        elif record.role is Role.DECISION and record.decision == "deny":
            refusals[refusal_reason(record)] += 1
            refused += 1
        elif record.role is Role.REFUSAL:
            refusals[refusal_reason(record)] += 1
            rejected += 1
    return Statistics(
        days=days,
        recipients=sorted(per_day),
        per_day=dict(sorted(per_day.items())),
        refusals=dict(refusals.most_common()),
        permitted=permitted,
        refused=refused,
        rejected_at_intake=rejected,
    )
