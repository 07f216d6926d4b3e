"""The submission contract: what a municipal system may send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts.signal import passes_eleven_test, signal_adapter


def valid_submission(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "municipality": "gm0363",
        "category": "huiselijk_geweld",
        "severity": "hoog",
        "purpose": "veiligheid_huiselijk_geweld",
        "occurred_at": "2026-11-20T21:15:00+01:00",
        "subject": {"kind": "person", "bsn": "999990019", "name": "J. Jansen"},
        "summary": "Buren melden geschreeuw.",
        "attributes": {},
    }
    document.update(overrides)
    return document


INVALID_SUBMISSIONS: dict[str, dict[str, Any]] = {
    "unknown category": valid_submission(category="fietsendiefstal"),
    "unknown severity": valid_submission(severity="extreem"),
    "unknown field": valid_submission(colour="red"),
    "bad municipality": valid_submission(municipality="amsterdam"),
    "unknown subject": valid_submission(subject={"kind": "vehicle", "plate": "12-ABC-3"}),
    "missing attributes": valid_submission(category="woonoverlast"),  # woonoverlast must name an address
    "missing summary": {k: v for k, v in valid_submission().items() if k != "summary"},
}
"""Submissions every description of the contract (model, JSON Schema, OpenAPI) must refuse."""


@pytest.mark.parametrize(
    ("bsn", "valid"),
    [
        ("999990019", True),
        ("111222333", True),
        ("123456782", True),
        ("123456789", False),
        ("000000000", False),
        ("99999001", False),
        ("99999001a", False),
        ("9999900190", False),
    ],
)
def test_eleven_test_accepts_only_valid_bsns(bsn: str, valid: bool) -> None:
    assert passes_eleven_test(bsn) is valid


def test_a_complete_signal_validates() -> None:
    submission = signal_adapter.validate_python(valid_submission())
    assert submission.subject.identifier() == "999990019"
    assert submission.category.value == "huiselijk_geweld"


def test_a_signal_from_the_future_is_refused() -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(ValidationError, match="future"):
        signal_adapter.validate_python(valid_submission(occurred_at=future))


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError):
        signal_adapter.validate_python(valid_submission(occurred_at="2026-11-20T21:15:00"))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        signal_adapter.validate_python(valid_submission(colour="red"))


def test_the_bsn_error_does_not_echo_the_bsn() -> None:
    with pytest.raises(ValidationError) as raised:
        signal_adapter.validate_python(valid_submission(subject={"kind": "person", "bsn": "123456789"}))
    details = raised.value.errors(include_input=False, include_url=False, include_context=False)
    assert "123456789" not in str(details)


def test_every_category_has_its_own_model() -> None:
    from shared.contracts.signal import SIGNAL_MODELS, Category

    assert set(SIGNAL_MODELS) == set(Category)
    for category, model in SIGNAL_MODELS.items():
        assert model.model_fields["category"].annotation.__args__ == (category,)  # type: ignore[union-attr]
