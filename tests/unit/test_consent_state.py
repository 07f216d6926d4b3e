"""Consent's state says the truth about what is in force and about subjects' data keys, and
believes only what its writers signed (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.consent.state import ConsentState, DataKeyUnavailableError
from shared.contracts.agreements import (
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    Directive,
    DirectiveKind,
    DirectiveScope,
    ProposalStatus,
    SubjectDirectives,
)
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import b64encode, data_key_context, seal
from shared.contracts.crypto.signing import sign_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import (
    Event,
    ProvidedTo,
    SealedPayload,
    SubjectDataKey,
    SubjectRecipients,
    data_key_id,
)
from shared.contracts.signal import Category
from shared.plumbing.settings import CommonSettings
from tests.unit.test_agreement_signatures import key_of, signed_by_all
from tests.unit.test_decision import agreement

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CONSENT = Ed25519PrivateKey.generate()
SIGNALS = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()
DATA_KEY = bytes(range(32))
KEYS_DIR = Path()  # the fixture's key folder (consent's X25519 key opens the sealed data keys)


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


AMS, OTHER = "gm0363", "gm0518"


def tombstone(
    subject: str, by: Ed25519PrivateKey = SIGNALS, for_key: str | None = None, municipality: str = AMS
) -> Headers:
    """A data key's tombstone as signals signs it: ce_subject and ce_municipality name the key."""
    envelope = Envelope(
        source="signals",
        type=SubjectDataKey.event_type,
        subject=for_key or subject,
        extensions=SubjectDataKey.envelope_extensions(municipality=municipality),
    )
    return sign_record(by, b"", envelope.to_headers())


def data_key_record(subject: str, municipality: str = AMS) -> tuple[bytes, Headers]:
    """A genuine data key, sealed to consent as the signals service issues it."""
    keys = KeyRing(KEYS_DIR, generate_missing=False)
    sealed = seal(keys.x25519_public("consent"), DATA_KEY, data_key_context(subject, municipality, "consent"))
    event = SubjectDataKey(
        subject_pseudonym=subject,
        municipality=municipality,
        sealed_key=SealedPayload(recipient="consent", ciphertext=b64encode(sealed)),
        issued_at=NOW,
    )
    envelope = Envelope(
        source="signals",
        type=event.event_type,
        subject=subject,
        extensions=SubjectDataKey.envelope_extensions(municipality=municipality),
    )
    value = event.to_bytes()
    return value, sign_record(SIGNALS, value, envelope.to_headers())


def directives_record(subject: str, sequence: int, *kinds: DirectiveKind) -> tuple[bytes, Headers]:
    event = SubjectDirectives(
        subject_pseudonym=subject,
        sequence=sequence,
        directives=tuple(
            Directive(
                kind=kind,
                scope=DirectiveScope(category=Category.ONDERMIJNING),
                municipality=AMS,
                recorded_at=NOW,
                recorded_by=AMS,
            )
            for kind in kinds
        ),
    )
    return signed(event, subject=subject)


@pytest.fixture
def state(tmp_path: Path) -> ConsentState:
    global KEYS_DIR
    KEYS_DIR = tmp_path / "keys"
    keys = KeyRing(KEYS_DIR, generate_missing=True)
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
        state.keys.data_key("a" * 32, AMS)
    state.keys.view._apply(data_key_id("a" * 32, AMS), None, tombstone("a" * 32))
    assert state.keys.data_key("a" * 32, AMS) is None


def test_only_a_tombstone_the_signals_service_signed_for_that_subject_erases(state: ConsentState) -> None:
    subject = "c" * 32
    key = data_key_id(subject, AMS)
    state.keys.view._apply(key, None, [])  # unsigned
    state.keys.view._apply(key, None, tombstone(subject, by=INTRUDER))  # forged
    state.keys.view._apply(key, None, tombstone("d" * 32))  # genuine, for another subject
    state.keys.view._apply(key, None, tombstone(subject, municipality=OTHER))  # genuine, another's key
    assert not state.keys.view.removed(key) and state.keys.view.untrusted == 4
    with pytest.raises(DataKeyUnavailableError):  # still no verdict: no erasure deny
        state.keys.data_key(subject, AMS)


def test_one_municipalitys_erased_key_leaves_anothers_key_of_the_subject(state: ConsentState) -> None:
    subject = "e" * 32
    state.keys.view._apply(data_key_id(subject, AMS), *data_key_record(subject, AMS))
    state.keys.view._apply(data_key_id(subject, OTHER), *data_key_record(subject, OTHER))
    state.keys.view._apply(data_key_id(subject, OTHER), None, tombstone(subject, municipality=OTHER))
    assert state.keys.data_key(subject, OTHER) is None
    assert state.keys.data_key(subject, AMS) == DATA_KEY


def test_a_replayed_data_key_never_undoes_its_tombstone(state: ConsentState) -> None:
    subject = "f" * 32
    key = data_key_id(subject, AMS)
    genuine = data_key_record(subject)
    state.keys.view._apply(key, *genuine)
    state.keys.view._apply(key, None, tombstone(subject))
    # The genuine key record, copied back onto the topic after its erasure.
    state.keys.view._apply(key, *genuine)
    assert state.keys.data_key(subject, AMS) is None and state.keys.view.outdated == 1


def test_a_sealed_key_filed_under_another_municipality_is_not_believed(state: ConsentState) -> None:
    subject = "f" * 32
    state.keys.view._apply(data_key_id(subject, OTHER), *data_key_record(subject, AMS))
    assert state.keys.view.untrusted == 1
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key(subject, OTHER)


def test_a_replayed_older_agreement_version_cannot_resume_a_suspended_one(state: ConsentState) -> None:
    active = published(id="current", version=1)
    state.agreements._apply("current", *active)
    state.agreements._apply("current", *published(id="current", version=2, status=AgreementStatus.SUSPENDED))
    state.agreements._apply("current", *active)  # copied back onto the topic
    assert state.agreements_in_force(NOW) == [] and state.agreements.outdated == 1
    (held,) = state.latest_agreements()
    assert held.version == 2 and held.status is AgreementStatus.SUSPENDED


def test_a_replayed_older_directive_set_cannot_lift_a_later_objection(state: ConsentState) -> None:
    subject = "a" * 32
    earlier = directives_record(subject, 1, DirectiveKind.CONSENT_GIVEN)
    state.directives._apply(subject, *earlier)
    state.directives._apply(
        subject, *directives_record(subject, 2, DirectiveKind.CONSENT_GIVEN, DirectiveKind.OBJECTION)
    )
    state.directives._apply(subject, *earlier)  # copied back onto the topic
    assert [d.kind for d in state.directives_of(subject)] == [
        DirectiveKind.CONSENT_GIVEN,
        DirectiveKind.OBJECTION,
    ]
    assert state.directive_sequence(subject) == 2 and state.directives.outdated == 1


def test_a_replayed_older_recipients_record_cannot_bring_back_what_an_erasure_cleared(
    state: ConsentState,
) -> None:
    subject = "b" * 32
    delivered = SubjectRecipients(
        subject_pseudonym=subject, sequence=1, provided=(ProvidedTo(municipality=AMS, recipients=("vt",)),)
    )
    cleared = SubjectRecipients(subject_pseudonym=subject, sequence=2, provided=())
    state.recipients._apply(subject, *signed(delivered, subject=subject))
    state.recipients._apply(subject, *signed(cleared, subject=subject))
    state.recipients._apply(subject, *signed(delivered, subject=subject))  # copied back
    held = state.recipients.get(subject)
    assert held is not None and held.sequence == 2 and held.signalled_by == frozenset()


def test_a_data_key_that_does_not_open_is_no_erasure(state: ConsentState) -> None:
    unreadable = SubjectDataKey.model_validate_json(
        b'{"subject_pseudonym": "' + b"b" * 32 + b'", "municipality": "gm0363",'
        b' "issued_at": "2026-11-29T12:00:00Z",'
        b' "sealed_key": {"recipient": "consent", "ciphertext": "AAAA"}}'
    )
    value = unreadable.to_bytes()
    envelope = Envelope(
        source="signals",
        type=unreadable.event_type,
        subject="b" * 32,
        extensions=SubjectDataKey.envelope_extensions(municipality=AMS),
    )
    state.keys.view._apply(
        data_key_id("b" * 32, AMS), value, sign_record(SIGNALS, value, envelope.to_headers())
    )
    with pytest.raises(DataKeyUnavailableError):
        state.keys.data_key("b" * 32, AMS)


def test_a_replayed_pending_proposal_cannot_revive_one_since_rejected(state: ConsentState) -> None:
    version = agreement(id="current", version=2)
    pending = AgreementProposed(
        agreement=version,
        content_hash=version.content_hash,
        organisation="gm0363",
        proposed_by="gm0363/a.admin",
        proposed_at=NOW,
        widens=("vt receives subject.bsn",),
        signatures=signed_by_all(version)[:1],
        sequence=1,
    )
    rejected = pending.model_copy(update={"status": ProposalStatus.REJECTED, "sequence": 2})
    state.proposals._apply("current", *signed(pending))
    state.proposals._apply("current", *signed(rejected))
    # The genuine pending record, copied back onto the topic by whoever may write it:
    state.proposals._apply("current", *signed(pending))
    held = state.proposals.get("current")
    assert held is not None and held.status is ProposalStatus.REJECTED
    assert state.proposals.outdated == 1
