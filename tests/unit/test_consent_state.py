"""Consent's state says the truth about what is in force and about subjects' data keys, and
believes only what its writers signed (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.consent.state import ConsentState, DataKeyUnavailableError
from shared.contracts.agreements import AgreementPublished, AgreementStatus
from shared.contracts.events import Event, SubjectDataKey
from shared.crypto.keys import KeyRing
from shared.crypto.signing import sign_record
from shared.envelope import Envelope, Headers
from shared.settings import CommonSettings
from tests.unit.test_agreement_signatures import key_of, signed_by_all
from tests.unit.test_decision import agreement

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CONSENT = Ed25519PrivateKey.generate()
SIGNALS = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()


def signed(
    event: Event, by: Ed25519PrivateKey = CONSENT, subject: str | None = None
) -> tuple[bytes, Headers]:
    value = event.to_bytes()
    envelope = Envelope(source="consent", type=event.event_type, subject=subject)
    return value, sign_record(by, value, envelope.to_headers())


def published(by: Ed25519PrivateKey = CONSENT, **overrides: object) -> tuple[bytes, Headers]:
    """A version every party signed, in a record consent signed (unless `by` says otherwise)."""
    version = agreement(**overrides)
    event = AgreementPublished(
        agreement=version,
        published_by="gm0363",
        published_at=NOW,
        approved=version,
        signatures=signed_by_all(version),
    )
    return signed(event, by)


def tombstone(subject: str, by: Ed25519PrivateKey = SIGNALS, for_key: str | None = None) -> Headers:
    envelope = Envelope(source="signals", type=SubjectDataKey.event_type, subject=for_key or subject)
    return sign_record(by, b"", envelope.to_headers())


@pytest.fixture
def state(tmp_path: Path) -> ConsentState:
    keys = KeyRing(tmp_path / "keys", generate_missing=True)
    return ConsentState(
        CommonSettings(),
        "consent",
        keys.x25519_private("consent"),
        CONSENT.public_key(),
        SIGNALS.public_key(),
        key_of,
    )


def test_agreements_in_force_are_the_active_and_valid_ones_only(state: ConsentState) -> None:
    state.agreements._apply("current", *published(id="current"))
    state.agreements._apply("suspended", *published(id="suspended", status=AgreementStatus.SUSPENDED))
    state.agreements._apply("expired", *published(id="expired", valid_until=date(2026, 6, 30)))
    state.agreements._apply("future", *published(id="future", valid_from=date(2027, 1, 1), valid_until=None))

    assert [a.id for a in state.agreements_in_force(NOW)] == ["current"]
    # A decision still sees the others, so it can say why they did not permit.
    assert [a.id for a in state.latest_agreements()] == ["current", "expired", "future", "suspended"]


def test_an_agreement_consent_did_not_sign_is_ignored(state: ConsentState) -> None:
    state.agreements._apply("current", *published(id="current"))
    value, headers = published(id="current", status=AgreementStatus.SUSPENDED)
    unsigned = [(name, v) for name, v in headers if name not in ("ce_signature", "ce_signaturekeyid")]
    state.agreements._apply("current", value, unsigned)
    state.agreements._apply(
        "current", *published(by=INTRUDER, id="current", status=AgreementStatus.SUSPENDED)
    )
    # a genuine record of another agreement, replayed under this one's key
    state.agreements._apply("current", *published(id="other", status=AgreementStatus.SUSPENDED))
    assert [a.id for a in state.agreements_in_force(NOW)] == ["current"]
    assert state.agreements.untrusted == 3


def test_a_version_not_every_party_signed_is_never_in_force(state: ConsentState) -> None:
    # Consent signed the record, but the version lacks a party's signature: another
    # municipality named as provider never agreed. It neither permits nor replaces anything.
    state.agreements._apply("current", *published(id="current"))
    version = agreement(id="current", version=2, providers=["gm0363", "gm0599"])
    event = AgreementPublished(
        agreement=version,
        published_by="gm0599",
        published_at=NOW,
        approved=version,
        signatures=tuple(s for s in signed_by_all(version) if s.statement.organisation != "gm0363"),
    )
    state.agreements._apply("current", *signed(event))
    (held,) = state.agreements_in_force(NOW)
    assert held.version == 1 and held.providers == ("gm0363",)


def test_a_record_of_another_type_is_ignored_even_when_signed(state: ConsentState) -> None:
    value, headers = published(id="current")
    wrong = [(n, v if n != "ce_type" else b"nl.safetychain.consent.directives.v1") for n, v in headers]
    state.agreements._apply("current", value, sign_record(CONSENT, value, wrong))
    assert state.latest_agreements() == [] and state.agreements.untrusted == 1


def test_a_missing_data_key_is_no_erasure_but_a_tombstone_is(state: ConsentState) -> None:
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key("a" * 32)
    state.keys.view._apply("a" * 32, None, tombstone("a" * 32))
    assert state.keys.data_key("a" * 32) is None


def test_only_a_tombstone_the_signals_service_signed_for_that_subject_erases(state: ConsentState) -> None:
    subject = "c" * 32
    state.keys.view._apply(subject, None, [])  # unsigned
    state.keys.view._apply(subject, None, tombstone(subject, by=INTRUDER))  # forged
    state.keys.view._apply(subject, None, tombstone("d" * 32))  # genuine, for another subject
    assert not state.keys.view.removed(subject) and state.keys.view.untrusted == 3
    with pytest.raises(DataKeyUnavailableError):  # still no verdict: no erasure deny
        state.keys.data_key(subject)


def test_a_data_key_that_does_not_open_is_no_erasure(state: ConsentState) -> None:
    unreadable = SubjectDataKey.model_validate_json(
        b'{"subject_pseudonym": "' + b"b" * 32 + b'", "issued_at": "2026-11-29T12:00:00Z",'
        b' "sealed_key": {"recipient": "consent", "ciphertext": "AAAA"}}'
    )
    state.keys.view._apply("b" * 32, *signed(unreadable, by=SIGNALS, subject="b" * 32))
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key("b" * 32)
