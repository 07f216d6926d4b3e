"""Parsing raw submissions into signals or into reasoned rejections (no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.signals.validation import Invalid, parse_submission
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.events import RejectionReason
from shared.contracts.registry import Registry
from shared.contracts.signal import SignalSubmission
from tests.unit.test_signal_contract import valid_submission


@pytest.fixture(scope="module")
def registry(project_config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry.load(project_config_dir, KeyRing(tmp_path_factory.mktemp("keys"), generate_missing=True))


def reasons(outcome: SignalSubmission | Invalid) -> set[RejectionReason]:
    assert isinstance(outcome, Invalid), "expected a rejection"
    return {error.reason for error in outcome.errors}


def test_valid_json_becomes_a_submission(registry: Registry) -> None:
    outcome = parse_submission(json.dumps(valid_submission()).encode(), registry)
    assert not isinstance(outcome, Invalid)
    assert outcome.category.value == "huiselijk_geweld"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", RejectionReason.MALFORMED_JSON),
        (b"\xff\xfe", RejectionReason.NOT_UTF8),
        (json.dumps(valid_submission(category="graffiti")).encode(), RejectionReason.UNKNOWN_CATEGORY),
        (json.dumps(valid_submission(municipality="gm9999")).encode(), RejectionReason.UNKNOWN_MUNICIPALITY),
        (
            json.dumps(valid_submission(subject={"kind": "person", "bsn": "123456789"})).encode(),
            RejectionReason.INVALID_BSN,
        ),
        (
            json.dumps(valid_submission(occurred_at="2999-01-01T00:00:00+00:00")).encode(),
            RejectionReason.FUTURE_TIME,
        ),
        (
            json.dumps({k: v for k, v in valid_submission().items() if k != "severity"}).encode(),
            RejectionReason.MISSING_FIELD,
        ),
        (json.dumps(valid_submission(severity="enorm")).encode(), RejectionReason.SCHEMA_VIOLATION),
        (b"[1, 2, 3]", RejectionReason.SCHEMA_VIOLATION),
    ],
)
def test_each_kind_of_bad_input_gets_its_reason(
    registry: Registry, raw: bytes, reason: RejectionReason
) -> None:
    assert reason in reasons(parse_submission(raw, registry))


def test_every_error_is_reported_at_once(registry: Registry) -> None:
    raw = json.dumps(valid_submission(category="graffiti", municipality="gm9999", severity="x")).encode()
    assert reasons(parse_submission(raw, registry)) >= {
        RejectionReason.UNKNOWN_CATEGORY,
        RejectionReason.UNKNOWN_MUNICIPALITY,
        RejectionReason.SCHEMA_VIOLATION,
    }


def test_error_locations_are_plain_field_paths(registry: Registry) -> None:
    raw = json.dumps(valid_submission(subject={"kind": "person", "bsn": "123456789"})).encode()
    outcome = parse_submission(raw, registry)
    assert isinstance(outcome, Invalid)
    assert [error.location for error in outcome.errors] == ["subject.bsn"]


def test_rejections_never_carry_the_submitted_personal_data(registry: Registry) -> None:
    raw = json.dumps(
        valid_submission(
            subject={"kind": "person", "bsn": "123456789", "name": "Geheime Naam"},
            category="x",
        )
    ).encode()
    outcome = parse_submission(raw, registry)
    assert isinstance(outcome, Invalid)
    text = str([error.model_dump() for error in outcome.errors])
    assert "123456789" not in text and "Geheime Naam" not in text


def test_a_valid_signal_id_and_known_municipality_are_kept_for_the_dead_letter(registry: Registry) -> None:
    raw = json.dumps(
        valid_submission(
            signal_id="6c3e4c43-9d3f-4cc9-9d0a-6c3f7a1c2b11",
            category="x",
        )
    ).encode()
    outcome = parse_submission(raw, registry)
    assert isinstance(outcome, Invalid)
    assert outcome.signal_id == "6c3e4c43-9d3f-4cc9-9d0a-6c3f7a1c2b11"
    assert outcome.municipality == "gm0363"
