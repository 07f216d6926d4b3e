"""Exports of audit-log queries (services.audit.queries.exports): each format's shape against the
standard's own field list (written out here, never imported from the module under test), proof
references, confidentiality, the citizen's version, and that nothing but the pseudonym about a
person ever leaves."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import leaf_bytes
from services.audit.log.record import AuditRecord
from services.audit.queries.exports import Format, render
from services.audit.queries.exports.confidentiality import Vertrouwelijkheid, vertrouwelijkheid
from services.audit.queries.exports.context import ExportContext, ExportCounts, ProofReference
from services.audit.queries.exports.csv_rows import export as csv_rows
from services.audit.queries.exports.ldv import export as ldv
from services.audit.queries.exports.ndjson import export as ndjson
from services.audit.queries.exports.vwl import export as vwl
from shared.contracts.agreements import AgreementPublished
from shared.contracts.events import (
    AuditRead,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SubjectErased,
)
from shared.contracts.registry import Registry
from shared.plumbing.settings import PROJECT_ROOT

REGISTRY = Registry.load(PROJECT_ROOT / "config")
REGISTER = "https://register.example.nl/verwerkingsactiviteiten"
TODAY = date(2026, 12, 1)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SIGNAL = "0b5e4bb0-6a1f-4c9e-9a57-4b1b8d1d2c11"
SUBJECT = "a3f1c2d4e5b6a7988776655443322110"  # the subject's pseudonym
POLICE_PSEUDONYM = "9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"  # the police's own pseudonym of the subject
DELIVERY = "1e2d3c4b-5a69-8877-9988-776655443322"
PLATFORM_OIN = "99999999900000001000"  # config/organisations.yaml: signals, consent, audit
AMSTERDAM_OIN = "00000001002564440000"
POLICE_OIN = "99999999100000001000"

# --- the standards' field lists (from /work/shared/STANDARDS.md and the standards' own text) ---

VWL_VERWERKINGSACTIE = {  # STANDARDS.md, "VNG Verwerkingenlogging"
    "actieId",
    "actieNaam",
    "handelingNaam",
    "verwerkingNaam",
    "verwerkingId",
    "verwerkingsactiviteitId",
    "verwerkingsactiviteitUrl",
    "vertrouwelijkheid",
    "bewaartermijn",
    "uitvoerder",
    "systeem",
    "gebruiker",
    "gegevensbron",
    "soortAfnemerId",
    "afnemerId",
    "verwerkingsactiviteitIdAfnemer",
    "verwerkingIdAfnemer",
    "tijdstip",
    "tijdstipRegistratie",
    "verwerkteObjecten",
}
# The standard's OpenAPI (gemma-verwerkingenlogging, schema Verwerkingsactie) also has these two.
VWL_OPENAPI_ALSO = {"url", "verwerkingsactiviteitUrlAfnemer"}
VWL_REQUIRED = {"actieId", "vertrouwelijkheid", "tijdstip", "tijdstipRegistratie", "verwerkteObjecten"}
VWL_VERWERKT_OBJECT = {"objecttype", "soortObjectId", "objectId", "betrokkenheid", "verwerkteSoortenGegevens"}
VWL_SOORT_GEGEVEN = {"soortGegeven"}
VWL_CITIZEN_HIDDEN = {"gebruiker", "systeem", "gegevensbron"}
VWL_PROOF = "x-safety-chain-proof"

LDV_LOG_ENTRY = {  # STANDARDS.md, "Logboek Dataverwerkingen"
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "start_time",
    "end_time",
    "status",
    "resource",
    "attributes",
}
LDV_REQUIRED = LDV_LOG_ENTRY - {"parent_span_id", "resource"}  # LDV 1.0.0: both optional
LDV_REQUIRED_ATTRIBUTES = {
    "dpl.core.processing_activity_id",
    "dpl.core.data_subject_id",
    "dpl.core.data_subject_id_type",
}
LDV_FOREIGN_ATTRIBUTES = {"dpl.core.foreign_operation.span_id", "dpl.core.foreign_operation.processor"}
LDV_STATUSES = {"Unset", "Ok", "Error"}  # LDV 1.0.0

AUDIT_RECORD = [  # the audit record as services/audit/log/leaf.py documents it, in column order
    "seq",
    "recorded_at",
    "event_type",
    "event_id",
    "event_time",
    "source",
    "target",
    "signal_id",
    "subject_pseudonym",
    "category",
    "purpose",
    "legal_basis",
    "agreement_id",
    "agreement_version",
    "fields",
    "delivery_id",
    "decision",
    "reasons",
    "confidential_until",
    "correlation_id",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
]
PROOF = {"seq", "tree_size", "inclusion"}


def record(seq: int, event_type: str, **changes: Any) -> AuditRecord:
    """An audit record as a store returns it."""
    base: dict[str, Any] = {
        "seq": seq,
        "recorded_at": f"2026-11-20T20:15:{seq:02d}.250000+00:00",
        "event_type": event_type,
        "event_id": f"00000000-0000-4000-8000-{seq:012d}",
        "event_time": "2026-11-20T21:15:00+01:00",
        "source": "gm0363",
        "target": None,
        "signal_id": SIGNAL,
        "subject_pseudonym": SUBJECT,
        "category": "huiselijk_geweld",
        "purpose": "veiligheid_huiselijk_geweld",
        "legal_basis": "Wmo 2015 art. 5.2.6",
        "agreement_id": None,
        "agreement_version": None,
        "fields": [],
        "delivery_id": None,
        "decision": None,
        "reasons": [],
        "confidential_until": None,
        "correlation_id": TRACE,
        "kafka_topic": "signals.accepted.v1",
        "kafka_partition": 0,
        "kafka_offset": seq,
    }
    return AuditRecord.model_validate(base | changes)


def exchange() -> list[AuditRecord]:
    """One signal's path: accepted, shared with the police (confidential until 2027) and
    delivered and received, a decision for another partner, an agreement change, an erasure
    and a read of the log."""
    return [
        record(1, SignalAccepted.event_type),
        record(
            2,
            ExchangeDecided.event_type,
            target="politie-eenheid-amsterdam",
            agreement_id="huiselijk-geweld-amsterdam",
            agreement_version=3,
            fields=["category", "address", "summary"],
            decision="permit",
            reasons=["agreement huiselijk-geweld-amsterdam v3 permits"],
            delivery_id=DELIVERY,
            confidential_until="2027-01-01",
            kafka_topic="exchange.decisions.v1",
        ),
        record(
            3,
            SignalDelivered.event_type,
            signal_id=None,
            subject_pseudonym=POLICE_PSEUDONYM,
            target="politie-eenheid-amsterdam",
            agreement_id="huiselijk-geweld-amsterdam",
            agreement_version=3,
            fields=["category", "address", "summary"],
            decision="delivered",
            delivery_id=DELIVERY,
            kafka_topic="partner.politie-eenheid-amsterdam.signals.v1",
        ),
        record(
            4,
            ExchangeReceipt.event_type,
            signal_id=None,
            subject_pseudonym=POLICE_PSEUDONYM,
            source="politie-eenheid-amsterdam",
            target="consent",
            agreement_id="huiselijk-geweld-amsterdam",
            agreement_version=3,
            decision="receipt-opened",
            delivery_id=DELIVERY,
            kafka_topic="exchange.receipts.v1",
        ),
        record(
            5,
            ExchangeDecided.event_type,
            target="zvh-amsterdam",
            agreement_id="huiselijk-geweld-amsterdam",
            agreement_version=3,
            fields=["category"],
            decision="permit",
            delivery_id="2f3e4d5c-6b7a-8998-aabb-ccddeeff0011",
            kafka_topic="exchange.decisions.v1",
        ),
        record(
            6,
            AgreementPublished.event_type,
            signal_id=None,
            subject_pseudonym=None,
            category=None,
            target="consent",
            agreement_id="huiselijk-geweld-amsterdam",
            agreement_version=3,
            decision="agreement-active",
            reasons=["Huiselijk geweld Amsterdam", "proposed by Piet Privacy", "approved by Anna Akkoord"],
            kafka_topic="consent.agreements.v1",
        ),
        record(
            7,
            SubjectErased.event_type,
            signal_id=None,
            target="signals",
            decision="erased",
            reasons=["by Jan Jansen"],
            kafka_topic="subjects.erased.v1",
        ),
        record(
            8,
            AuditRead.event_type,
            signal_id=None,
            source="safety-chain",
            target="audit",
            decision="read",
            reasons=["by officer@safety-chain", "scope *", f"subject={SUBJECT}", "7 records"],
            kafka_topic="audit.reads.v1",
        ),
    ]


def context(**changes: Any) -> ExportContext:
    settings: dict[str, Any] = {"registry": REGISTRY, "register_url": REGISTER, "today": TODAY}
    return ExportContext(**(settings | changes))


def lines(chunks: Iterator[str]) -> list[dict[str, Any]]:
    text = "".join(chunks)
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def keys_of(value: Any) -> set[str]:
    """Every key anywhere in a parsed JSON document."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_of(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_of(item)}
    return set()


# --- proof references ---------------------------------------------------------------------


def test_a_proof_reference_names_the_newest_checkpoint_that_covers_the_record() -> None:
    covered = ProofReference.of(5, 10)
    assert (covered.seq, covered.tree_size) == (5, 10)
    assert covered.inclusion == "/v1/audit/records/5/inclusion?tree_size=10"
    assert ProofReference.of(10, 10).inclusion == "/v1/audit/records/10/inclusion?tree_size=10"
    for uncovered in (ProofReference.of(11, 10), ProofReference.of(1, None)):
        assert uncovered.tree_size is None
        assert uncovered.inclusion is None
        assert uncovered.as_dict() == {"seq": uncovered.seq, "tree_size": None, "inclusion": None}


@pytest.mark.parametrize("checkpoint", [None, 4])
def test_every_format_carries_each_records_proof_reference(checkpoint: int | None) -> None:
    records = exchange()
    settings = context(checkpoint_size=checkpoint)

    def expected(seq: int) -> dict[str, Any]:
        if checkpoint is not None and seq <= checkpoint:
            return {"seq": seq, "tree_size": 4, "inclusion": f"/v1/audit/records/{seq}/inclusion?tree_size=4"}
        return {"seq": seq, "tree_size": None, "inclusion": None}

    for line in lines(ndjson(records, settings)):
        assert line["proof"] == expected(line["seq"])
    for action in lines(vwl(records, settings)):
        assert action[VWL_PROOF] == expected(action[VWL_PROOF]["seq"])
    for entry in lines(ldv(records, settings)):
        attributes = entry["attributes"]
        proof = expected(attributes["safety_chain.audit.seq"])
        assert attributes.get("safety_chain.audit.tree_size") == proof["tree_size"]
        assert attributes.get("safety_chain.audit.inclusion") == proof["inclusion"]
    rows = list(csv.DictReader(io.StringIO("".join(csv_rows(records, settings)))))
    for row in rows:
        proof = expected(int(row["seq"]))
        assert row["proof_tree_size"] == ("" if proof["tree_size"] is None else str(proof["tree_size"]))
        assert row["proof_inclusion"] == (proof["inclusion"] or "")


# --- confidentiality ------------------------------------------------------------------------


def test_confidentiality_is_normaal_vertrouwelijk_then_opgeheven_by_date() -> None:
    assert vertrouwelijkheid(record(1, SignalAccepted.event_type), TODAY) is Vertrouwelijkheid.NORMAAL
    confidential = record(2, ExchangeDecided.event_type, confidential_until="2027-01-01")
    assert vertrouwelijkheid(confidential, date(2026, 12, 31)) == "vertrouwelijk"
    assert vertrouwelijkheid(confidential, date(2027, 1, 1)) == "opgeheven"  # from the date on
    assert vertrouwelijkheid(confidential, date(2030, 6, 1)) == "opgeheven"
    assert vertrouwelijkheid(
        record(2, ExchangeDecided.event_type, confidential_until=date(2027, 1, 1)), TODAY
    ) == ("vertrouwelijk")


def test_the_officers_vwl_marks_confidential_actions_and_their_delivery() -> None:
    actions = {a[VWL_PROOF]["seq"]: a for a in lines(vwl(exchange(), context()))}
    assert len(actions) == 8
    # the decision carries the date; its delivery and receipt name the same delivery id
    assert {seq: actions[seq]["vertrouwelijkheid"] for seq in (1, 2, 3, 4, 5)} == {
        1: "normaal",
        2: "vertrouwelijk",
        3: "vertrouwelijk",
        4: "vertrouwelijk",
        5: "normaal",
    }
    released = {a[VWL_PROOF]["seq"]: a for a in lines(vwl(exchange(), context(today=date(2027, 2, 1))))}
    assert {released[seq]["vertrouwelijkheid"] for seq in (2, 3, 4)} == {"opgeheven"}


@pytest.mark.parametrize("fmt", list(Format))
def test_the_citizens_version_withholds_what_is_still_confidential_in_every_format(fmt: Format) -> None:
    counts = ExportCounts()
    text = "".join(render(fmt, exchange(), context(citizen=True), counts))
    assert POLICE_PSEUDONYM not in text  # the police's delivery and receipt of a confidential decision
    assert DELIVERY not in text
    assert "politie-eenheid-amsterdam" not in text
    assert counts.withheld >= 3
    # once released, the citizen sees it
    released = "".join(render(fmt, exchange(), context(citizen=True, today=date(2027, 1, 1))))
    assert POLICE_PSEUDONYM in released


def test_the_citizens_vwl_drops_the_officer_only_fields_and_actions_without_a_subject() -> None:
    officer = lines(vwl(exchange(), context()))
    citizen = lines(vwl(exchange(), context(citizen=True)))
    assert any(set(action) >= VWL_CITIZEN_HIDDEN for action in officer)
    assert citizen
    for action in citizen:
        assert not VWL_CITIZEN_HIDDEN & set(action)
        assert action["verwerkteObjecten"]  # a citizen reads by object
        assert action["vertrouwelijkheid"] in {"normaal", "opgeheven"}
    assert {a[VWL_PROOF]["seq"] for a in citizen} == {1, 5, 7, 8}


# --- NDJSON -----------------------------------------------------------------------------------


def test_ndjson_lines_parse_to_the_record_and_its_proof_and_rebuild_its_leaf() -> None:
    records = exchange()
    parsed = lines(ndjson(records, context(checkpoint_size=8)))
    assert len(parsed) == len(records)
    for line, original in zip(parsed, records, strict=True):
        assert list(line) == [*AUDIT_RECORD, "proof"]
        assert set(line["proof"]) == PROOF
        assert {name: line[name] for name in AUDIT_RECORD} == original.document()
        assert leaf_bytes({name: line[name] for name in AUDIT_RECORD}) == leaf_bytes(original)


def test_the_record_allowlist_covers_every_field_the_audit_log_keeps() -> None:
    assert {"seq", "recorded_at", *AuditFact.model_fields} <= set(AUDIT_RECORD)


# --- CSV ------------------------------------------------------------------------------------


def test_csv_round_trips_through_csv_reader_with_lists_joined() -> None:
    records = exchange()
    rows = list(csv.reader(io.StringIO("".join(csv_rows(records, context(checkpoint_size=8))), newline="")))
    assert rows[0] == [*AUDIT_RECORD, "proof_tree_size", "proof_inclusion"]
    assert len(rows) == len(records) + 1
    decision = dict(zip(rows[0], rows[2], strict=True))
    assert decision["fields"] == "category;address;summary"
    assert decision["agreement_version"] == "3"
    assert decision["target"] == "politie-eenheid-amsterdam"
    assert decision["confidential_until"] == "2027-01-01"
    assert decision["proof_inclusion"] == "/v1/audit/records/2/inclusion?tree_size=8"
    assert dict(zip(rows[0], rows[1], strict=True))["target"] == ""  # None is empty


def test_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas() -> None:
    planted = record(
        1,
        SignalAccepted.event_type,
        purpose='=HYPERLINK("https://evil.example","klik")',
        legal_basis="+31 20 000 0000",
        category="-2+3",
        agreement_id="@SUM(A1)",
        reasons=['=cmd|" /C calc"!A0', 'plain; with a, comma and "quotes"'],
        fields=["\tname"],
    )
    rows = list(csv.reader(io.StringIO("".join(csv_rows([planted], context())), newline="")))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["purpose"] == '\'=HYPERLINK("https://evil.example","klik")'
    assert row["legal_basis"] == "'+31 20 000 0000"
    assert row["category"] == "'-2+3"
    assert row["agreement_id"] == "'@SUM(A1)"
    assert row["reasons"] == '\'=cmd|" /C calc"!A0;plain; with a, comma and "quotes"'
    assert row["fields"] == "'\tname"
    for cells in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


# --- LDV ------------------------------------------------------------------------------------


def test_ldv_entries_have_the_standards_fields_and_required_attributes() -> None:
    entries = lines(ldv(exchange(), context(checkpoint_size=8)))
    for entry in entries:
        assert set(entry) <= LDV_LOG_ENTRY
        assert set(entry) >= LDV_REQUIRED
        assert re.fullmatch(r"[0-9a-f]{32}", entry["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", entry["span_id"]) and entry["span_id"] != "0" * 16
        assert entry["status"] in LDV_STATUSES
        assert isinstance(entry["start_time"], int) and entry["start_time"] <= entry["end_time"]
        assert entry["name"]
        attributes = entry["attributes"]
        assert set(attributes) >= LDV_REQUIRED_ATTRIBUTES
        assert all(
            key in LDV_REQUIRED_ATTRIBUTES | LDV_FOREIGN_ATTRIBUTES or key.startswith("safety_chain.audit.")
            for key in attributes
        )
        assert attributes["dpl.core.processing_activity_id"].startswith(REGISTER + "/")
        assert entry["resource"]["attributes"]["safety_chain.organisation.oin"] in {
            PLATFORM_OIN,
            POLICE_OIN,
        }
    assert {e["trace_id"] for e in entries} == {TRACE}
    # 2026-11-20T21:15:00+01:00 in milliseconds since the Epoch
    assert entries[0]["start_time"] == 1_795_205_700_000


def test_ldv_writes_one_line_per_data_subject_and_counts_the_records_without_one() -> None:
    records = exchange()
    counts = ExportCounts()
    entries = lines(ldv(records, context(), counts))
    with_subject = [r for r in records if r.subject_pseudonym]
    assert len(entries) == len(with_subject) == counts.written
    assert counts.without_subject == len(records) - len(with_subject) == 1
    assert [e["attributes"]["dpl.core.data_subject_id"] for e in entries] == [
        r.subject_pseudonym for r in with_subject
    ]
    assert len({e["span_id"] for e in entries}) == len(entries)
    # deterministic: the same records give the same lines
    assert lines(ldv(records, context())) == entries


def test_ldv_names_the_calling_organisation_by_its_oin_only_when_another_one_called() -> None:
    by_seq = {
        e["attributes"]["safety_chain.audit.seq"]: e["attributes"] for e in lines(ldv(exchange(), context()))
    }
    processor = "dpl.core.foreign_operation.processor"
    assert by_seq[1][processor] == REGISTRY.source("gm0363")  # Amsterdam submitted the signal
    assert AMSTERDAM_OIN in by_seq[1][processor]
    assert by_seq[4][processor] == REGISTRY.source("consent")  # the police's receipt answers consent
    assert by_seq[7][processor] == REGISTRY.source("gm0363")  # Amsterdam asked for the erasure
    for internal in (2, 3, 5, 8):  # consent's own steps; the platform's officer reading its own log
        assert processor not in by_seq[internal]
    urls = {
        e["attributes"].get(processor)
        for e in lines(ldv(exchange(), context(processor_url=lambda o: f"https://{o.id}.example")))
    }
    assert "https://gm0363.example" in urls
    assert by_seq[3]["dpl.core.data_subject_id_type"] != by_seq[2]["dpl.core.data_subject_id_type"]


def test_ldv_processing_activity_is_the_agreement_version_or_the_platforms_own() -> None:
    by_seq = {
        e["attributes"]["safety_chain.audit.seq"]: e["attributes"] for e in lines(ldv(exchange(), context()))
    }
    activity = "dpl.core.processing_activity_id"
    assert by_seq[2][activity] == f"{REGISTER}/convenanten/huiselijk-geweld-amsterdam/v3"
    assert by_seq[3][activity] == by_seq[2][activity]
    assert by_seq[1][activity] == f"{REGISTER}/platform/signal.accepted"
    assert by_seq[8][activity] == f"{REGISTER}/platform/audit.read"


# --- VWL ------------------------------------------------------------------------------------


def test_vwl_actions_use_exactly_the_standards_names() -> None:
    actions = lines(vwl(exchange(), context(checkpoint_size=8)))
    uuid_form = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for action in actions:
        assert set(action) - {VWL_PROOF} <= VWL_VERWERKINGSACTIE | VWL_OPENAPI_ALSO
        assert set(action) >= VWL_REQUIRED | {VWL_PROOF}
        assert set(action[VWL_PROOF]) == PROOF
        for name in ("actieId", "verwerkingId", "verwerkingsactiviteitId"):
            assert uuid_form.fullmatch(action[name])
        assert action["vertrouwelijkheid"] in {"normaal", "vertrouwelijk", "opgeheven"}
        assert re.fullmatch(r"[0-9]{20}", action["uitvoerder"])
        assert re.fullmatch(r"P\d+[YMWD]", action["bewaartermijn"])
        assert None not in action.values()  # the OpenAPI's strings are not nullable
        for processed in action["verwerkteObjecten"]:
            assert set(processed) == VWL_VERWERKT_OBJECT
            assert processed["objecttype"] == "persoon"
            assert len(processed["objectId"]) <= 40
            for kind in processed["verwerkteSoortenGegevens"]:
                assert set(kind) == VWL_SOORT_GEGEVEN
    delivery = next(a for a in actions if a[VWL_PROOF]["seq"] == 3)
    assert delivery["soortAfnemerId"] == "OIN"
    assert delivery["afnemerId"] == POLICE_OIN
    assert delivery["uitvoerder"] == PLATFORM_OIN
    assert delivery["systeem"] == "consent"
    assert delivery["gegevensbron"] == "partner.politie-eenheid-amsterdam.signals.v1"
    assert delivery["verwerkteObjecten"][0]["objectId"] == POLICE_PSEUDONYM
    assert [k["soortGegeven"] for k in delivery["verwerkteObjecten"][0]["verwerkteSoortenGegevens"]] == [
        "category",
        "address",
        "summary",
    ]
    decision = next(a for a in actions if a[VWL_PROOF]["seq"] == 2)
    assert decision["verwerkingId"].replace("-", "") == TRACE  # the exchange, as LDV's trace id
    assert decision["verwerkingsactiviteitUrl"] == f"{REGISTER}/convenanten/huiselijk-geweld-amsterdam/v3"
    assert decision["tijdstip"] == "2026-11-20T21:15:00+01:00"
    assert "afnemerId" not in decision  # a decision provides nothing yet
    receipt = next(a for a in actions if a[VWL_PROOF]["seq"] == 4)
    assert receipt["uitvoerder"] == POLICE_OIN
    assert len({a["actieId"] for a in actions}) == len(actions)
    assert lines(vwl(exchange(), context(checkpoint_size=8))) == actions  # deterministic


def test_vwl_retention_comes_from_the_lookup_or_the_default() -> None:
    def thirty_days_for_decisions(rec: AuditRecord) -> str | None:
        return "P30D" if rec.event_type == ExchangeDecided.event_type else None

    actions = lines(vwl(exchange(), context(retention=thirty_days_for_decisions)))
    assert {a["bewaartermijn"] for a in actions if a[VWL_PROOF]["seq"] in (2, 5)} == {"P30D"}
    assert {a["bewaartermijn"] for a in actions if a[VWL_PROOF]["seq"] == 1} == {"P10Y"}
    assert all("bewaartermijn" not in a for a in lines(vwl(exchange(), context(default_retention=None))))
    with pytest.raises(ValueError, match="ISO 8601"):
        list(vwl(exchange(), context(retention=lambda rec: "30 days")))
    with pytest.raises(ValueError, match="ISO 8601"):
        context(default_retention="ten years")


def test_the_user_is_named_only_in_the_officers_vwl_and_never_in_ldv() -> None:
    officer = {a[VWL_PROOF]["seq"]: a for a in lines(vwl(exchange(), context()))}
    assert officer[7]["gebruiker"] == "Jan Jansen"
    assert officer[6]["gebruiker"] == "Piet Privacy"  # who proposed the change
    assert "gebruiker" not in officer[2]
    people = ("Jan Jansen", "Piet Privacy", "Anna Akkoord", "officer@safety-chain")
    for text in (
        "".join(ldv(exchange(), context())),
        "".join(vwl(exchange(), context(citizen=True))),
        "".join(ndjson(exchange(), context(citizen=True))),
        "".join(csv_rows(exchange(), context(citizen=True))),
    ):
        assert not any(person in text for person in people)
    citizen_read = next(line for line in lines(ndjson(exchange(), context(citizen=True))) if line["seq"] == 8)
    assert citizen_read["reasons"] == ["scope *", f"subject={SUBJECT}", "7 records"]


# --- nothing else leaves --------------------------------------------------------------------


@pytest.mark.parametrize("citizen", [False, True])
def test_no_export_carries_a_key_outside_its_standards_list_or_a_stores_extra_column(citizen: bool) -> None:
    extra = {"bsn": "999990019", "leaf_hash": "ab" * 32}  # columns a store might keep beside the record
    planted = [AuditRecord.model_validate(r.document() | extra) for r in exchange()]
    allowed = {
        Format.NDJSON: {*AUDIT_RECORD, "proof"} | PROOF,
        Format.LDV: LDV_LOG_ENTRY | {"attributes"},  # attribute keys are checked below
        Format.VWL: VWL_VERWERKINGSACTIE
        | VWL_OPENAPI_ALSO
        | VWL_VERWERKT_OBJECT
        | VWL_SOORT_GEGEVEN
        | {VWL_PROOF}
        | PROOF,
    }
    settings = context(citizen=citizen, checkpoint_size=8)
    for fmt in Format:
        text = "".join(render(fmt, planted, settings))
        assert "999990019" not in text and "ab" * 32 not in text
        if fmt is Format.CSV:
            assert next(csv.reader(io.StringIO(text))) == [
                *AUDIT_RECORD,
                "proof_tree_size",
                "proof_inclusion",
            ]
            continue
        for document in (json.loads(line) for line in text.splitlines()):
            if fmt is Format.LDV:
                assert set(document) <= LDV_LOG_ENTRY
                assert all(
                    key in LDV_REQUIRED_ATTRIBUTES | LDV_FOREIGN_ATTRIBUTES
                    or key.startswith("safety_chain.audit.")
                    for key in document["attributes"]
                )
                assert all(
                    key.startswith(("service.", "safety_chain.organisation."))
                    for key in document["resource"]["attributes"]
                )
            else:
                assert keys_of(document) <= allowed[fmt]


def test_the_only_value_about_a_person_in_ldv_and_vwl_is_the_pseudonym() -> None:
    for fmt in (Format.LDV, Format.VWL):
        for document in (
            json.loads(line) for line in "".join(render(fmt, exchange(), context())).splitlines()
        ):
            subjects = (
                [document["attributes"]["dpl.core.data_subject_id"]]
                if fmt is Format.LDV
                else [o["objectId"] for o in document["verwerkteObjecten"]]
            )
            assert set(subjects) <= {SUBJECT, POLICE_PSEUDONYM}


# --- the entry point ------------------------------------------------------------------------


def test_formats_name_their_media_type_and_extension() -> None:
    assert {f.value: (f.media_type, f.extension) for f in Format} == {
        "ndjson": ("application/x-ndjson", "ndjson"),
        "csv": ("text/csv; charset=utf-8", "csv"),
        "ldv": ("application/x-ndjson", "ldv.ndjson"),
        "vwl": ("application/x-ndjson", "vwl.ndjson"),
    }
    assert "".join(render("ldv", exchange(), context())) == "".join(ldv(exchange(), context()))
    with pytest.raises(ValueError):
        render("xml", exchange(), context())


@pytest.mark.parametrize("fmt", list(Format))
def test_exports_stream_one_record_at_a_time(fmt: Format) -> None:
    def records() -> Iterator[AuditRecord]:
        yield record(1, SignalAccepted.event_type)
        raise AssertionError("read past the first record for the first line")

    chunks = render(fmt, records(), context())
    first = next(chunks)
    if fmt is Format.CSV:
        first = next(chunks)  # after the header
    assert first.endswith("\n")


def test_an_export_context_needs_an_absolute_register_url() -> None:
    with pytest.raises(ValueError, match="absolute"):
        context(register_url="/register")
