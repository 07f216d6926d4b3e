"""An agreement version is a contract: every party signs its exact content, with its own key.

Pure: the content hash (FSC's, over RFC 8785 canonical JSON), the signature (a compact JWS),
and the rule consent believes a published version by (services/consent/approvals.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from services.consent.approvals import UnsignedVersionError, counts_toward, signature_problem, verified
from services.consent.decision import SignalFacts, decide
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    ApprovalStatement,
    PartySignature,
    SignatureType,
)
from shared.contracts.crypto.approvals import (
    ApprovalSignatureError,
    sign_statement,
    sign_version,
    unverified_statement,
    verify_statement,
)
from shared.contracts.events import Decision
from shared.contracts.signal import Category
from tests.unit.test_decision import VT, agreement

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PARTY_KEYS = {party: Ed25519PrivateKey.generate() for party in ("gm0363", "gm0599", VT, "zvh-amsterdam")}


def key_of(organisation: str) -> Ed25519PublicKey:
    """The registry's lookup: a LookupError for an organisation it does not know."""
    return PARTY_KEYS[organisation].public_key()


def gm0363_accepts() -> ApprovalStatement:
    """The statement gm0363 signs when it accepts `agreement()`, at NOW."""
    return ApprovalStatement(
        agreement_id="hg",
        version=1,
        contract_content_hash=agreement().content_hash,
        organisation="gm0363",
        type=SignatureType.ACCEPT,
        signed_at=NOW,
    )


def signature(
    version: Agreement,
    party: str,
    kind: SignatureType = SignatureType.ACCEPT,
    key: Ed25519PrivateKey | None = None,
) -> PartySignature:
    jws = sign_version(key or PARTY_KEYS[party], version, party, kind, NOW)
    return PartySignature(statement=unverified_statement(jws), signed_by=f"{party}/fg", jws=jws)


def signed_by_all(version: Agreement) -> tuple[PartySignature, ...]:
    return tuple(signature(version, party) for party in sorted(version.parties))


def published(version: Agreement, approved: Agreement | None = None) -> AgreementPublished:
    basis = approved or version
    return AgreementPublished(
        agreement=version,
        published_by="gm0363",
        published_at=NOW,
        approved=basis,
        signatures=signed_by_all(basis),
    )


# -- the content hash ----------------------------------------------------------------------


def test_the_content_hash_is_fsc_shaped_sha3_512_over_the_canonical_json() -> None:
    version = agreement()
    canonical = rfc8785.dumps(json.loads(version.model_dump_json()))
    digest = base64.urlsafe_b64encode(hashlib.sha3_512(canonical).digest()).decode().rstrip("=")
    assert version.content_hash == "$1$1$" + digest
    # The canonical form does not depend on the order the document was written in.
    reordered = Agreement.model_validate(dict(reversed(list(version.model_dump(mode="json").items()))))
    assert reordered.content_hash == version.content_hash


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"status": AgreementStatus.SUSPENDED},
        {"title": "Huiselijk geweld."},
        {"retention_days": 364},
        {"providers": ["gm0363", "gm0599"]},
        {"recipients": [{"partner": VT, "fields": ["category"]}]},
    ],
)
def test_any_change_of_the_content_is_other_content(change: dict[str, Any]) -> None:
    assert agreement(**change).content_hash != agreement().content_hash


# -- the signature -------------------------------------------------------------------------


def test_a_signature_verifies_with_its_partys_key_only() -> None:
    jws = sign_version(PARTY_KEYS["gm0363"], agreement(), "gm0363", signed_at=NOW)
    statement = verify_statement(key_of("gm0363"), jws)
    assert statement == gm0363_accepts()
    with pytest.raises(ApprovalSignatureError):
        verify_statement(key_of("gm0599"), jws)


@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_a_signature_with_any_byte_changed_does_not_verify(position: int, flip: int) -> None:
    jws = sign_version(PARTY_KEYS["gm0363"], agreement(), "gm0363", signed_at=NOW).encode()
    index = position % len(jws)
    tampered = jws[:index] + bytes([jws[index] ^ flip]) + jws[index + 1 :]
    try:
        statement = verify_statement(key_of("gm0363"), tampered.decode("latin-1"))
    except ApprovalSignatureError:
        return
    # base64url may decode a changed last character to the same bytes; then nothing changed.
    assert statement == verify_statement(key_of("gm0363"), jws.decode())


def test_a_jws_of_another_kind_is_no_agreement_signature() -> None:
    import jwt

    token = jwt.encode({"sub": "x"}, PARTY_KEYS["gm0363"], algorithm="EdDSA")
    with pytest.raises(ApprovalSignatureError):
        verify_statement(key_of("gm0363"), token)


# -- what consent believes -----------------------------------------------------------------


def test_a_version_every_party_signed_is_believed() -> None:
    record = published(agreement())
    assert verified(record, key_of) is record


def test_a_version_a_party_did_not_sign_is_not_believed() -> None:
    version = agreement(providers=["gm0363", "gm0599"])
    only_some = tuple(signature(version, party) for party in ("gm0599", VT))
    record = published(version).model_copy(update={"signatures": only_some})
    with pytest.raises(UnsignedVersionError, match="gm0363"):
        verified(record, key_of)


def test_signatures_of_other_content_do_not_carry_over() -> None:
    signed = agreement()
    widened = agreement(recipients=[{"partner": VT, "fields": ["category", "subject.name", "subject.bsn"]}])
    record = published(widened).model_copy(update={"signatures": signed_by_all(signed)})
    with pytest.raises(UnsignedVersionError):
        verified(record, key_of)


def test_a_signature_made_with_another_key_or_for_another_party_does_not_count() -> None:
    version = agreement()
    forged = signature(version, "gm0363", key=PARTY_KEYS["gm0599"])
    assert signature_problem(forged, version, key_of) is not None
    # gm0599's genuine signature, presented as gm0363's: the statement names gm0599
    theirs = signature(version, "gm0599")
    posing = theirs.model_copy(
        update={"statement": theirs.statement.model_copy(update={"organisation": "gm0363"})}
    )
    assert signature_problem(posing, version, key_of) is not None
    # an organisation that is not a party signs nothing here
    assert "not a party" in (signature_problem(theirs, version, key_of) or "")


def test_a_rejection_is_no_acceptance() -> None:
    version = agreement()
    signatures = (signature(version, "gm0363", SignatureType.REJECT), signature(version, VT))
    record = published(version).model_copy(update={"signatures": signatures})
    with pytest.raises(UnsignedVersionError, match="gm0363"):
        verified(record, key_of)


def test_a_version_that_narrows_what_was_signed_is_believed_one_that_widens_it_is_not() -> None:
    signed = agreement()
    narrower = agreement(version=2, recipients=[{"partner": VT, "fields": ["category"]}])
    suspended = agreement(version=2, status=AgreementStatus.SUSPENDED)
    assert verified(published(narrower, approved=signed), key_of).agreement == narrower
    assert verified(published(suspended, approved=signed), key_of).agreement == suspended
    wider = agreement(version=2, providers=["gm0363", "gm0599"])
    with pytest.raises(UnsignedVersionError, match="provider gm0599 added"):
        verified(published(wider, approved=signed), key_of)
    resumed = agreement(version=3)
    with pytest.raises(UnsignedVersionError, match="resumes"):
        verified(published(resumed, approved=suspended).model_copy(update={"approved": suspended}), key_of)


def test_a_party_signs_a_proposal_once() -> None:
    version = agreement()
    proposal = AgreementProposed(
        agreement=version,
        content_hash=version.content_hash,
        organisation="gm0363",
        proposed_by="gm0363/admin",
        proposed_at=NOW,
        widens=("a new agreement",),
    )
    first = signature(version, VT)
    assert counts_toward(proposal, first, key_of) is None
    signed = proposal.model_copy(update={"signatures": (first,)})
    assert signed.awaiting == {"gm0363"}
    assert "already" in (counts_toward(signed, signature(version, VT), key_of) or "")


def test_a_statement_signed_out_of_canonical_form_is_refused() -> None:
    statement = gm0363_accepts()
    import jwt

    loose = json.dumps(statement.model_dump(mode="json"), indent=1).encode()
    token = jwt.PyJWS().encode(
        loose, PARTY_KEYS["gm0363"], algorithm="EdDSA", headers={"typ": "safetychain-agreement-signature+jws"}
    )
    with pytest.raises(ApprovalSignatureError, match="canonical"):
        verify_statement(key_of("gm0363"), token)
    assert verify_statement(key_of("gm0363"), sign_statement(PARTY_KEYS["gm0363"], statement)) == statement


@pytest.mark.parametrize("status", [AgreementStatus.SUSPENDED, AgreementStatus.REVOKED])
def test_a_suspended_or_revoked_agreement_permits_nothing_and_says_why(status: AgreementStatus) -> None:
    facts = SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld")
    assert decide(facts, VT, [agreement()], NOW).decision is Decision.PERMIT
    outcome = decide(facts, VT, [agreement(status=status)], NOW)
    assert outcome.decision is Decision.DENY
    assert any(status.value in reason for reason in outcome.reasons), outcome.reasons
