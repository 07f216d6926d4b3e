"""One signal's path through the exchange, as the audit log recorded it.

Accepted (or rejected) by signals; per candidate recipient consent's decision with its reasons,
the delivery and the partner's receipt; and, when the subject's data were erased, the erasure
and its notices to each recipient with their receipts. Built from the records the store
returns for the signal (which follow each decision's delivery id to the partner's own records)
and the erasure records about the same subject. Only verified facts make the timeline
(services.audit.log.facts.is_fact); records the log flagged are listed apart, as such, never as the
intake, a decision, a delivery or a receipt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from services.audit.log.catalogue import Role
from services.audit.log.facts import is_fact
from services.audit.log.record import AuditRecord

INTAKE: Final = frozenset({Role.SIGNAL, Role.REFUSAL})
ERASURE_DECISIONS: Final = frozenset(
    {"erased", "erased-without-key", "erasure-forwarded", "erasure-notified", "receipt-erased"}
)
"""What the erasure of the subject, its notices and the partners' receipts of them decide (only
facts do: a record the log flagged has its verdict as its decision)."""


@dataclass
class Lane:
    """What happened between the signal and one recipient."""

    recipient: str
    decision: AuditRecord | None = None
    delivery: AuditRecord | None = None
    receipt: AuditRecord | None = None
    erasure_notices: list[AuditRecord] = field(default_factory=list)

    @property
    def records(self) -> list[AuditRecord]:
        found = [self.decision, self.delivery, self.receipt, *self.erasure_notices]
        return [record for record in found if record is not None]


@dataclass
class Timeline:
    signal_id: str
    intake: AuditRecord | None  # accepted or rejected
    lanes: list[Lane]
    erasures: list[AuditRecord]
    flagged: list[AuditRecord]  # records the log could not believe (forged, unverifiable)
    records: list[AuditRecord]  # every verified fact of them, in event order

    @property
    def subject(self) -> str | None:
        return self.intake.subject_pseudonym if self.intake else None

    @property
    def decided(self) -> bool:
        return any(lane.decision is not None for lane in self.lanes)

    @property
    def shared_under(self) -> list[str]:
        """The legal bases the signal was shared under: those of the agreements that permitted
        it (the municipality need not claim one; consent decides per recipient)."""
        found = (lane.decision.legal_basis for lane in self.lanes if lane.decision is not None)
        return sorted({basis for basis in found if basis})


def build_timeline(
    signal_id: str, records: list[AuditRecord], subject_records: Iterable[AuditRecord] = ()
) -> Timeline:
    """`records`: the store's answer for the signal; `subject_records`: those about its subject
    (only the erasure records among them are used)."""
    erasure_records = [r for r in subject_records if r.decision in ERASURE_DECISIONS]
    everything = {r.seq: r for r in [*records, *erasure_records]}
    believed = sorted(everything.values(), key=lambda r: (r.event_time, r.seq))
    ordered = [r for r in believed if is_fact(r)]
    intake = next((r for r in ordered if r.role in INTAKE), None)
    lanes: dict[str, Lane] = {}
    by_delivery: dict[str, Lane] = {}
    for record in ordered:
        if record.role is Role.DECISION and record.target:
            lane = lanes.setdefault(record.target, Lane(record.target))
            lane.decision = record
            if record.delivery_id:
                by_delivery[record.delivery_id] = lane
    notices: dict[str, Lane] = {}
    for record in ordered:
        decision = record.decision or ""
        delivered_in = by_delivery.get(record.delivery_id or "")
        if record.role is Role.DELIVERY and delivered_in:
            delivered_in.delivery = record
        elif decision in ("receipt-opened", "receipt-refused") and delivered_in:
            delivered_in.receipt = record
        elif record.role is Role.NOTICE_SENT and record.target in lanes:
            lanes[record.target].erasure_notices.append(record)
            notices[record.delivery_id or ""] = lanes[record.target]
    for record in ordered:
        notified = record.role is Role.NOTICE or record.decision == "receipt-erased"
        if notified and record.delivery_id in notices:
            notices[record.delivery_id].erasure_notices.append(record)
    return Timeline(
        signal_id=signal_id,
        intake=intake,
        lanes=sorted(lanes.values(), key=lambda lane: lane.recipient),
        erasures=[r for r in ordered if r.role is Role.ERASURE],
        flagged=[r for r in believed if not is_fact(r)],
        records=ordered,
    )
