"""One definition of a verified fact (services.audit.log.facts.is_fact), and every view of the log
built from verified facts only: a record the log flagged (forged, unverifiable, unreadable) stays
in the log as evidence, and only the integrity view shows it. Pure: records as the stores return
them, the in-memory store for queries."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.audit.log.facts import (
    FLAGGED_DECISIONS,
    AuditFact,
    SignatureCheck,
    fact_from_record,
    is_fact,
    unreadable_fact,
)
from services.audit.log.memory_store import InMemoryAuditStore
from services.audit.log.query import ReaderScope, RecordQuery
from services.audit.log.record import AuditRecord
from services.audit.queries.agreement_history import histories
from services.audit.queries.exports import Format, render
from services.audit.queries.exports.context import ExportContext
from services.audit.queries.report import Version, build_report
from services.audit.queries.search import reader_scope
from services.audit.queries.statistics import count
from services.audit.queries.timeline import build_timeline
from shared.contracts.agreements import AgreementPublished
from shared.contracts.envelope import Headers
from shared.contracts.events import (
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
)
from shared.contracts.registry import OrganisationKind
from shared.plumbing.policy import ALL_RECORDS, Action, Principal, Role, authorise
from tests.unit.test_audit_facts import REGISTRY, SOURCES, delivery_record, receipt_record, signed_by

_seq = itertools.count(1)
SUBJECT = "a" * 32
ATTACKER = "zvh-amsterdam"


def record(minute: int, event_type: str, source: str, **fields: Any) -> AuditRecord:
    base: dict[str, Any] = {
        "seq": next(_seq),
        "recorded_at": "2026-11-28T10:00:00+00:00",
        "event_type": event_type,
        "event_id": f"e-{minute}",
        "event_time": f"2026-11-28T10:{minute:02d}:00.000000Z",
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
        "correlation_id": "c" * 32,
        "kafka_topic": "t",
        "kafka_partition": 0,
        "kafka_offset": minute,
    }
    return AuditRecord.model_validate(base | fields)


def forged(claimed: AuditRecord, verdict: str = "forged") -> AuditRecord:
    """`claimed` as the log keeps it when its writer's key did not sign it (facts.py)."""
    return claimed.model_copy(
        update={
            "decision": verdict,
            "reasons": ("not signed by consent", f"claimed {claimed.decision or 'fact'}", *claimed.reasons),
        }
    )


# --- the definition ------------------------------------------------------------------------


def logged(topic: str, offset: int, written: tuple[bytes, Headers], check: SignatureCheck) -> AuditFact:
    value, headers = written
    return fact_from_record(topic, 0, offset, headers, value, check, sources=SOURCES)


def test_the_flagged_decisions_are_exactly_those_the_log_gives_records_it_cannot_believe() -> None:
    delivery, receipt = delivery_record(), receipt_record()
    partner_topic, receipts = "partner.veilig-thuis-amsterdam.signals.v1", "exchange.receipts.v1"
    made = {
        logged(partner_topic, 1, delivery, lambda *_: False),  # not consent's key
        logged("exchange.decisions.v1", 2, delivery, signed_by),  # on a topic it does not belong on
        logged(partner_topic, 3, delivery, lambda *_: None),  # no key to check it with
        logged(receipts, 4, receipt, lambda *_: False),
        logged(receipts, 5, receipt, lambda *_: None),
        unreadable_fact(receipts, 0, 6, [], "no envelope"),
    }
    assert {fact.decision for fact in made} == FLAGGED_DECISIONS
    assert not any(is_fact(fact) for fact in made)
    genuine = [logged(partner_topic, 7, delivery, signed_by), logged(receipts, 8, receipt, lambda *_: True)]
    assert [fact.decision for fact in genuine] == ["delivered", "receipt-opened"]
    assert all(is_fact(fact) for fact in genuine)


@pytest.mark.parametrize("flagged", [None, False, True])
def test_a_query_asks_for_facts_flagged_records_or_both(flagged: bool | None) -> None:
    store = InMemoryAuditStore()
    delivery_value, delivery_headers = delivery_record()
    topic = "partner.veilig-thuis-amsterdam.signals.v1"
    store.append_batch(
        [
            fact_from_record(topic, 0, 1, delivery_headers, delivery_value, signed_by, sources=SOURCES),
            fact_from_record(
                topic, 0, 2, delivery_headers, delivery_value, lambda *_: False, sources=SOURCES
            ),
            unreadable_fact(topic, 0, 3, [], "no envelope"),
        ]
    )
    found = [str(r.decision) for r in store.records(RecordQuery(flagged=flagged))]
    expected = {
        None: ["delivered", "forged", "unreadable"],
        False: ["delivered"],
        True: ["forged", "unreadable"],
    }
    assert sorted(found) == expected[flagged]
    assert store.count(RecordQuery(flagged=flagged)) == len(found)


# --- every view ------------------------------------------------------------------------------

PUBLISHED = AgreementPublished.event_type


def test_a_forged_agreement_change_makes_nobody_a_party_and_puts_no_version_in_force() -> None:
    genuine = record(
        0,
        PUBLISHED,
        "consent",
        agreement_id="hg",
        agreement_version=1,
        decision="agreement-active",
        reasons=["Huiselijk geweld", "parties: gm0363, veilig-thuis-amsterdam"],
    )
    planted = forged(
        record(
            1,
            PUBLISHED,
            "consent",
            agreement_id="hg",
            agreement_version=2,
            decision="agreement-active",
            reasons=["Huiselijk geweld", f"parties: gm0363, veilig-thuis-amsterdam, {ATTACKER}"],
        )
    )
    (history,) = histories([genuine, planted])
    assert [change.record for change in history.changes] == [genuine]
    assert ATTACKER not in history.parties
    assert history.in_force is not None and history.in_force.version == 1
    # an agreement nobody genuinely published has no history at all
    assert (
        histories([forged(record(2, PUBLISHED, "consent", agreement_id="x", decision="agreement-active"))])
        == []
    )


def test_a_forged_acceptance_or_decision_is_nothing_in_the_access_report() -> None:
    genuine = record(
        0,
        SignalAccepted.event_type,
        "gm0363",
        signal_id="s-1",
        subject_pseudonym=SUBJECT,
        category="huiselijk_geweld",
    )
    planted_signal = forged(
        record(
            1,
            SignalAccepted.event_type,
            "gm0599",
            signal_id="s-2",
            subject_pseudonym=SUBJECT,
            category="radicalisering",
        )
    )
    planted_exchange = forged(
        record(
            2, ExchangeDecided.event_type, "gm0599", target="riec-amsterdam", subject_pseudonym=SUBJECT,
            signal_id="s-2", decision="permit",
        )
    )  # fmt: skip
    report = build_report(
        [genuine, planted_signal, planted_exchange],
        subject=SUBJECT,
        scope="*",
        names={},
        version=Version.OFFICER,
        today=date(2026, 11, 29),
        generated_at=datetime(2026, 11, 29, tzinfo=UTC),
        log_size=3,
        checkpoint_size=None,
    )
    assert [(s.provider, s.category) for s in report.signals] == [("gm0363", "huiselijk_geweld")]
    assert report.recipients == []


def test_a_forged_record_is_neither_the_intake_nor_a_lane_of_the_timeline() -> None:
    planted_intake = forged(
        record(0, SignalAccepted.event_type, "gm0599", signal_id="s-1", subject_pseudonym=SUBJECT)
    )
    genuine_intake = record(
        1, SignalAccepted.event_type, "gm0363", signal_id="s-1", subject_pseudonym=SUBJECT
    )
    planted_decision = forged(
        record(
            2,
            ExchangeDecided.event_type,
            "gm0363",
            target="riec-amsterdam",
            signal_id="s-1",
            decision="permit",
        )
    )
    timeline = build_timeline("s-1", [planted_intake, genuine_intake, planted_decision])
    assert timeline.intake is genuine_intake and timeline.lanes == []
    assert timeline.records == [genuine_intake]
    assert timeline.flagged == [planted_intake, planted_decision]


def test_forged_decisions_and_rejections_count_for_nothing_on_the_dashboard() -> None:
    records = [
        record(0, ExchangeDecided.event_type, "gm0363", target="veilig-thuis-amsterdam", decision="permit"),
        forged(record(1, SignalRejected.event_type, "gm0363", decision="rejected", reasons=["bad_json:$"])),
        forged(record(2, ExchangeDecided.event_type, "gm0363", target="riec-amsterdam", decision="deny")),
    ]
    counted = count(records, date(2026, 11, 28), date(2026, 11, 28))
    assert (counted.permitted, counted.refused, counted.rejected_at_intake) == (1, 0, 0)
    assert counted.refusals == {} and counted.recipients == ["veilig-thuis-amsterdam"]


@pytest.mark.parametrize("format", list(Format))
def test_an_export_carries_verified_facts_only(format: Format) -> None:
    genuine = record(0, SignalAccepted.event_type, "gm0363", signal_id="s-1", subject_pseudonym=SUBJECT)
    planted = forged(
        record(1, SignalAccepted.event_type, "gm0599", signal_id="s-2", subject_pseudonym=SUBJECT)
    )
    context = ExportContext(
        registry=REGISTRY, register_url="https://register.example", today=date(2026, 11, 29)
    )
    text = "".join(render(format, [genuine, planted], context))
    assert "s-1" in text or format in (Format.LDV, Format.VWL)
    assert "s-2" not in text and "gm0599" not in text and "forged" not in text
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == (2 if format is Format.CSV else 1)  # CSV: the header and one row


# --- what a reader's scope covers ------------------------------------------------------------

VT = "veilig-thuis-amsterdam"


def test_a_partners_scope_covers_its_deliveries_notices_and_receipts_never_a_decision() -> None:
    decided = record(
        0, ExchangeDecided.event_type, "gm0363", target=VT, decision="deny", subject_pseudonym=SUBJECT
    )
    delivered = record(1, SignalDelivered.event_type, "gm0363", target=VT, decision="delivered")
    receipt = record(2, ExchangeReceipt.event_type, VT, target="consent", decision="receipt-opened")
    notice = record(
        3, "nl.safetychain.subject.erasure-notice.v1", "consent", target=VT, decision="erasure-notified"
    )
    forwarded = record(
        4, "nl.safetychain.subject.erasure-forwarded.v1", "consent", target=VT, subject_pseudonym=SUBJECT
    )
    read = record(5, "nl.safetychain.audit.read.v1", VT, target="audit", decision="read")
    other = record(6, SignalDelivered.event_type, "gm0363", target="riec-amsterdam", decision="delivered")
    everything = [decided, delivered, receipt, notice, forwarded, read, other]
    partner = ReaderScope.partner(VT)
    assert [r for r in everything if partner.covers(r)] == [delivered, receipt, notice]
    municipality = ReaderScope.municipality("gm0363")
    assert [r for r in everything if municipality.covers(r)] == [decided, delivered, other]
    assert all(ReaderScope.everything().covers(r) for r in everything)


@pytest.mark.parametrize(
    ("organisation", "kind", "audit_scope", "expected"),
    [
        ("safety-chain", OrganisationKind.PLATFORM, ALL_RECORDS, ReaderScope.everything()),
        ("gm0363", OrganisationKind.MUNICIPALITY, "gm0363", ReaderScope.municipality("gm0363")),
        (VT, OrganisationKind.PARTNER, VT, ReaderScope.partner(VT)),
    ],
)
def test_the_readers_scope_follows_the_policys_verdict_and_the_organisations_kind(
    organisation: str, kind: OrganisationKind, audit_scope: str, expected: ReaderScope
) -> None:
    principal = Principal(organisation, kind, frozenset({Role.PRIVACY_OFFICER}), f"{organisation}/fg")
    verdict = authorise(principal, Action.READ_AUDIT)
    assert verdict and verdict.audit_scope == audit_scope
    assert reader_scope(principal, verdict.audit_scope) == expected
    with pytest.raises(ValueError):
        reader_scope(principal, None)  # no scope: the policy did not allow reading
