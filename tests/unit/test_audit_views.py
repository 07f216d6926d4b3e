"""What the console builds from audit records: one signal's timeline, the dashboard's counts,
the agreements' history. Pure functions over records, table-tested."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from services.audit.log.record import AuditRecord
from services.audit.queries.agreement_history import histories
from services.audit.queries.statistics import count, refusal_reason
from services.audit.queries.timeline import build_timeline

_seq = itertools.count(1)
DECIDED = "nl.safetychain.exchange.decided.v1"


def record(minute: int, event_type: str, source: str, **fields: Any) -> AuditRecord:
    seq = next(_seq)
    base: dict[str, Any] = {
        "seq": seq,
        "recorded_at": "2026-11-28T10:00:00+00:00",
        "event_id": f"e-{seq}",
        "correlation_id": "c" * 32,
        "kafka_topic": "t",
        "kafka_partition": 0,
        "kafka_offset": seq,
        "event_time": f"2026-11-2{fields.pop('day', 8)}T10:{minute:02d}:00.000000Z",
        "event_type": event_type,
        "source": source,
        "target": None,
        "signal_id": None,
        "subject_pseudonym": None,
        "category": None,
        "purpose": None,
        "legal_basis": None,
        "agreement_id": None,
        "agreement_version": None,
        "fields": [],
        "delivery_id": None,
        "decision": None,
        "reasons": [],
        "confidential_until": None,
    }
    return AuditRecord.model_validate(base | fields)


def signal_path() -> tuple[list[AuditRecord], list[AuditRecord]]:
    """(the signal's records, the subject's erasure records)."""
    s, p = "sig-1", "a" * 32
    signal = [
        record(0, "nl.safetychain.signal.accepted.v1", "gm0363", signal_id=s, subject_pseudonym=p),
        record(
            1,
            DECIDED,
            "gm0363",
            target="vt",
            signal_id=s,
            decision="permit",
            delivery_id="d-vt",
            reasons=["hg v1 permits"],
        ),
        record(
            1,
            DECIDED,
            "gm0363",
            target="riec",
            signal_id=s,
            decision="deny",
            reasons=["no agreement names riec as recipient"],
        ),
        record(
            2,
            "nl.safetychain.signal.delivered.v1",
            "gm0363",
            target="vt",
            delivery_id="d-vt",
            decision="delivered",
        ),
        record(
            3,
            "nl.safetychain.exchange.receipt.v1",
            "vt",
            target="consent",
            delivery_id="d-vt",
            decision="receipt-opened",
        ),
        record(
            4,
            "nl.safetychain.exchange.receipt.v1",
            "vt",
            target="consent",
            delivery_id="d-vt",
            decision="receipt-forged",
            reasons=["not signed by vt"],
        ),
    ]
    erasure = [
        record(
            10,
            "nl.safetychain.subject.erased.v1",
            "gm0363",
            target="signals",
            subject_pseudonym=p,
            decision="erased",
        ),
        record(
            11,
            "nl.safetychain.subject.erasure-forwarded.v1",
            "consent",
            target="vt",
            subject_pseudonym=p,
            decision="erasure-forwarded",
            delivery_id="n-vt",
        ),
        record(
            12,
            "nl.safetychain.subject.erasure-notice.v1",
            "consent",
            target="vt",
            decision="erasure-notified",
            delivery_id="n-vt",
        ),
        record(
            13,
            "nl.safetychain.exchange.receipt.v1",
            "vt",
            target="consent",
            decision="receipt-erased",
            delivery_id="n-vt",
        ),
        record(
            14, "nl.safetychain.audit.read.v1", "gm0363", target="audit", subject_pseudonym=p, decision="read"
        ),
    ]
    return signal, erasure


def test_the_timeline_puts_each_partners_decision_delivery_receipt_and_erasure_in_its_lane() -> None:
    signal, erasure = signal_path()
    timeline = build_timeline("sig-1", signal, erasure)
    assert timeline.intake is signal[0] and timeline.subject == "a" * 32
    vt, riec = {lane.recipient: lane for lane in timeline.lanes}["vt"], timeline.lanes[0]
    assert riec.recipient == "riec" and riec.decision is signal[2] and riec.delivery is None
    assert (vt.decision, vt.delivery, vt.receipt) == (signal[1], signal[3], signal[4])
    assert [n.decision for n in vt.erasure_notices] == [
        "erasure-forwarded",
        "erasure-notified",
        "receipt-erased",
    ]
    assert [e.decision for e in timeline.erasures] == ["erased"]
    assert [f.decision for f in timeline.flagged] == ["receipt-forged"]  # never taken as the receipt
    # every verified record in event order, the subject's read left out (not part of the signal's
    # path), the forged receipt only among the flagged
    assert [r.seq for r in timeline.records] == [r.seq for r in [*signal[:5], *erasure[:4]]]


@pytest.mark.parametrize(
    ("reasons", "event_type", "expected"),
    [
        (["no agreement names riec as recipient"], DECIDED, "no_agreement"),
        (["zvh v1: the subject objected (AVG art. 21)"], DECIDED, "objection"),
        (["hg v1: subject consent is required but absent"], DECIDED, "no_consent"),
        (["hg v1: suspended"], DECIDED, "suspended"),
        (["hg v2: revoked"], DECIDED, "revoked"),
        (["hg v1: category ondermijning is not covered"], DECIDED, "not_covered"),
        (["hg v1: municipality gm0599 is not a provider"], DECIDED, "not_a_provider"),
        (["hg v1: not valid on 2029-01-01"], DECIDED, "not_in_force"),
        (["something new"], DECIDED, "other"),
        (["schema_violation:subject.bsn"], "nl.safetychain.signal.rejected.v1", "intake:schema_violation"),
    ],
)
def test_a_refusal_is_counted_under_its_reason(reasons: list[str], event_type: str, expected: str) -> None:
    assert refusal_reason(record(0, event_type, "gm0363", decision="deny", reasons=reasons)) == expected


def test_the_dashboard_counts_permits_per_day_per_recipient_and_refusals_by_reason() -> None:
    records = [
        record(0, DECIDED, "gm0363", target="vt", decision="permit", day=7),
        record(1, DECIDED, "gm0363", target="vt", decision="permit", day=8),
        record(2, DECIDED, "gm0363", target="zvh", decision="permit", day=8),
        record(
            3, DECIDED, "gm0363", target="riec", decision="deny", reasons=["no agreement names riec"], day=8
        ),
        record(4, "nl.safetychain.signal.rejected.v1", "gm0363", decision="rejected", reasons=["bad_json:$"]),
        record(5, DECIDED, "gm0363", target="vt", decision="permit", day=1),  # before the period
    ]
    counted = count(records, date(2026, 11, 27), date(2026, 11, 28))
    assert counted.days == [date(2026, 11, 27), date(2026, 11, 28)]
    assert counted.per_day == {"vt": [1, 1], "zvh": [0, 1]}
    assert counted.refusals == {"no_agreement": 1, "intake:bad_json": 1}
    assert (counted.permitted, counted.refused, counted.rejected_at_intake) == (3, 1, 1)


def test_a_partners_dashboard_counts_what_reached_it_as_the_platforms_counts_the_permits() -> None:
    delivered = "nl.safetychain.signal.delivered.v1"
    permits = [record(n, DECIDED, "gm0363", target="vt", decision="permit", day=7 + n % 2) for n in range(3)]
    deliveries = [
        record(10 + n, delivered, "gm0363", target="vt", decision="delivered", day=7 + n % 2)
        for n in range(3)
    ]
    platform = count([*permits, *deliveries], date(2026, 11, 27), date(2026, 11, 28))
    partner = count(deliveries, date(2026, 11, 27), date(2026, 11, 28), by_deliveries=True)
    assert partner.per_day == platform.per_day == {"vt": [2, 1]}
    assert partner.permitted == platform.permitted == 3
    # Without deliveries counted, a partner's scope (no decisions) would show nothing at all.
    assert count(deliveries, date(2026, 11, 27), date(2026, 11, 28)).permitted == 0


def test_agreement_history_names_who_proposed_and_approved_and_what_is_in_force() -> None:
    published = "nl.safetychain.consent.agreement.v1"
    proposed = "nl.safetychain.consent.agreement.proposal.v1"
    parties = "parties: gm0363, vt"
    records = [
        record(
            0,
            published,
            "configuration",
            agreement_id="hg",
            agreement_version=1,
            decision="agreement-active",
            reasons=["Huiselijk geweld", parties],
        ),
        record(
            1,
            proposed,
            "gm0363",
            agreement_id="hg",
            agreement_version=2,
            decision="proposal-approved",
            reasons=[
                "proposed by gm0363/a.admin",
                "approved by gm0363/p.officer",
                "widens: vt receives subject.bsn",
                parties,
            ],
        ),
        record(
            2,
            published,
            "gm0363",
            agreement_id="hg",
            agreement_version=2,
            decision="agreement-active",
            reasons=[
                "Huiselijk geweld",
                "proposed by gm0363/a.admin",
                "approved by gm0363/p.officer for gm0363",
                "approved by vt/v.officer for vt",
                parties,
            ],
        ),
        record(
            3,
            published,
            "gm0363",
            agreement_id="zvh",
            agreement_version=1,
            decision="agreement-suspended",
            reasons=["ZVH", "parties: gm0363, zvh"],
        ),
    ]
    hg, zvh = histories(records)
    assert [c.version for c in hg.changes] == [2, 2, 1]  # newest first
    in_force = hg.in_force
    assert in_force is not None and in_force.version == 2
    assert (in_force.proposed_by, in_force.approved_by) == (
        "gm0363/a.admin",
        "gm0363/p.officer, vt/v.officer",
    )
    proposal = hg.changes[1]
    assert proposal.kind == "proposal" and proposal.status == "approved"
    assert proposal.decided_by == "gm0363/p.officer" and proposal.widens == ["vt receives subject.bsn"]
    assert hg.title == "Huiselijk geweld" and hg.parties == {"gm0363", "vt"}
    assert zvh.in_force is None and zvh.parties == {"gm0363", "zvh"}


def test_agreement_history_says_whose_signature_a_proposal_awaits_and_why_nothing_is_in_force() -> None:
    published = "nl.safetychain.consent.agreement.v1"
    proposed = "nl.safetychain.consent.agreement.proposal.v1"
    parties = "parties: gm0363, gm0599, politie"
    records = [
        record(
            0,
            proposed,
            "gm0599",
            agreement_id="grab",
            agreement_version=1,
            decision="proposal-pending",
            reasons=[
                "proposed by gm0599/r.admin",
                "approved by gm0599/r.fg for gm0599",
                "awaiting gm0363",
                "awaiting politie",
                parties,
            ],
        ),
        record(
            1,
            published,
            "gm0363",
            agreement_id="old",
            agreement_version=3,
            decision="agreement-revoked",
            reasons=["Oud", parties],
        ),
        record(
            2,
            published,
            "gm0363",
            agreement_id="paused",
            agreement_version=2,
            decision="agreement-suspended",
            reasons=["Pauze", parties],
        ),
    ]
    grab, old, paused = histories(records)
    assert grab.in_force is None and grab.not_in_force == "unsigned"
    (pending,) = grab.changes
    assert pending.awaiting == ["gm0363", "politie"] and pending.approved_by == "gm0599/r.fg"
    assert (old.in_force, old.not_in_force) == (None, "revoked")
    assert (paused.in_force, paused.not_in_force) == (None, "suspended")
