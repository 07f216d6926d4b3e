"""Leaf bytes stay what they were when the record grows a field, and a typed record makes the
same bytes as the JSON document it is stored as."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import ADDED_FIELDS, LEAF_FIELDS, leaf_bytes
from services.audit.log.record import AuditRecord

RECORD: dict[str, Any] = {
    "seq": 1,
    "recorded_at": "2026-11-29T10:00:00.000001Z",
    "event_type": "nl.safetychain.exchange.decided.v1",
    "event_id": "e-1",
    "event_time": "2026-11-29T10:00:00.000001Z",
    "source": "gm0363",
    "target": "politie-eenheid-amsterdam",
    "signal_id": None,
    "subject_pseudonym": "a" * 32,
    "category": "ondermijning",
    "purpose": "p",
    "legal_basis": "b",
    "agreement_id": "z",
    "agreement_version": 1,
    "fields": ["category"],
    "delivery_id": None,
    "decision": "permit",
    "reasons": ["r"],
    "correlation_id": "c" * 32,
    "kafka_topic": "t",
    "kafka_partition": 0,
    "kafka_offset": 7,
}


def test_a_record_without_the_added_fields_keeps_its_original_bytes() -> None:
    assert set(RECORD) == set(LEAF_FIELDS)
    original = rfc8785.dumps(RECORD)  # what the log wrote before confidential_until existed
    assert leaf_bytes(RECORD) == original
    assert leaf_bytes({**RECORD, "confidential_until": None}) == original


def test_an_added_field_with_a_value_is_in_the_leaf() -> None:
    marked = leaf_bytes({**RECORD, "confidential_until": "2028-01-01"})
    assert json.loads(marked)["confidential_until"] == "2028-01-01"
    assert set(json.loads(marked)) == {*LEAF_FIELDS, *ADDED_FIELDS}


def test_a_record_holds_its_place_then_every_field_of_its_fact_in_order() -> None:
    assert tuple(AuditRecord.model_fields) == ("seq", "recorded_at", *AuditFact.model_fields)


def test_a_typed_record_and_its_stored_document_make_the_same_leaf() -> None:
    marked = {**RECORD, "confidential_until": "2028-01-01"}
    for document in (RECORD, marked):
        record = AuditRecord.model_validate(document)
        assert record.document() == {"confidential_until": None, **document}
        assert leaf_bytes(record) == leaf_bytes(document)
