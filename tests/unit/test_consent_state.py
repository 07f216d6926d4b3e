"""Consent's state says the truth about what is in force and about subjects' data keys (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.consent.state import ConsentState, DataKeyUnavailableError
from shared.contracts.agreements import AgreementPublished, AgreementStatus
from shared.crypto.keys import KeyRing
from shared.settings import CommonSettings
from tests.unit.test_decision import agreement

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def published(**overrides: object) -> bytes:
    event = AgreementPublished(agreement=agreement(**overrides), published_by="gm0363", published_at=NOW)
    return event.to_bytes()


@pytest.fixture
def state(tmp_path: Path) -> ConsentState:
    keys = KeyRing(tmp_path / "keys", generate_missing=True)
    return ConsentState(CommonSettings(), "consent", keys.x25519_private("consent"))


def test_agreements_in_force_are_the_active_and_valid_ones_only(state: ConsentState) -> None:
    state.agreements._apply("current", published(id="current"))
    state.agreements._apply("suspended", published(id="suspended", status=AgreementStatus.SUSPENDED))
    state.agreements._apply("expired", published(id="expired", valid_until=date(2026, 6, 30)))
    state.agreements._apply("future", published(id="future", valid_from=date(2027, 1, 1), valid_until=None))

    assert [a.id for a in state.agreements_in_force(NOW)] == ["current"]
    # A decision still sees the others, so it can say why they did not permit.
    assert [a.id for a in state.latest_agreements()] == ["current", "expired", "future", "suspended"]


def test_a_missing_data_key_is_no_erasure_but_a_tombstone_is(state: ConsentState) -> None:
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key("a" * 32)
    state.keys.view._apply("a" * 32, None)
    assert state.keys.data_key("a" * 32) is None


def test_a_data_key_that_does_not_open_is_no_erasure(state: ConsentState) -> None:
    unreadable = (
        b'{"subject_pseudonym": "' + b"b" * 32 + b'", "issued_at": "2026-11-29T12:00:00Z",'
        b' "sealed_key": {"recipient": "consent", "ciphertext": "AAAA"}}'
    )
    state.keys.view._apply("b" * 32, unreadable)
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key("b" * 32)
