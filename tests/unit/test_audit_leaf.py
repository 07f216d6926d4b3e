"""Leaf bytes stay what they were when the record grows a field, a typed record makes the same
bytes as the JSON document it is stored as, and the fast encoder writes the reference's bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import (
    ADDED_FIELDS,
    LEAF_FIELDS,
    ORDER,
    canonical,
    fast,
    leaf_bytes,
    plain,
    reference,
)
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


# Any code point: controls, quotes, astral, lone surrogates (and no codec for Hypothesis to map
# on a first run, which costs seconds)
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
SCALARS = st.one_of(
    st.none(),
    st.text(ANY_CHARACTER),
    st.integers(),
    st.integers(-(2**53), 2**53),  # either side of RFC 8785's safe integers
    st.floats(allow_nan=False),
    st.booleans(),
)
CONTENT = st.dictionaries(
    st.sampled_from([*LEAF_FIELDS, *ADDED_FIELDS]) | st.text(ANY_CHARACTER, max_size=4),
    SCALARS | st.lists(st.text(ANY_CHARACTER), max_size=3),
)


def encoded(encode: Callable[[dict[str, Any]], bytes], content: dict[str, Any]) -> bytes | str:
    try:
        return encode(content)
    except ValueError as error:  # what the reference refuses (rfc8785.CanonicalizationError)
        return type(error).__name__


LEAF_SHAPED = st.fixed_dictionaries(  # keys in RFC 8785's order, as leaf_content and the stores make them
    {name: SCALARS for name in ORDER if name not in ADDED_FIELDS},
    optional={name: SCALARS for name in ADDED_FIELDS},
).map(lambda content: {name: content[name] for name in ORDER if name in content})


@settings(max_examples=400, derandomize=True)
@given(CONTENT | LEAF_SHAPED)
def test_the_fast_encoder_writes_the_reference_bytes_for_any_content(content: dict[str, Any]) -> None:
    assert encoded(canonical, content) == encoded(reference, content)
    if plain(content):  # what a store hands back to be verified
        assert encoded(fast, content) == encoded(reference, content)


def test_a_record_the_fast_encoder_writes_is_the_rfc_8785_leaf() -> None:
    tricky = {**RECORD, "reasons": ['\x00\x1f\x7f"\\\u2028\U0001f600é\b\f\n\r\t/', "plain"]}
    assert leaf_bytes(tricky) == rfc8785.dumps(tricky)
    with pytest.raises(rfc8785.IntegerDomainError):  # what RFC 8785 cannot write stays refused
        leaf_bytes({**RECORD, "kafka_offset": 2**53})


def test_an_appended_record_comes_with_its_own_document() -> None:
    stated = {name: value for name, value in RECORD.items() if name not in ("seq", "recorded_at")}
    for fact in (stated, {**stated, "confidential_until": "2028-01-01"}):
        record, document = AuditRecord.appended(3, AuditFact.model_validate(fact))
        assert document == record.document() and leaf_bytes(document) == leaf_bytes(record)
