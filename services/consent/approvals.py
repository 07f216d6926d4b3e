"""Is a version signed by every party? The rules that make an agreement a contract.

Pure: keys come in through `KeyOf` (the registry's lookup), nothing here reads Kafka or files.
A version is in force only when every party of the version its parties signed (`approved`)
accepted that version's exact content hash with its own key; a version that differs from the
signed one (a narrowing change, a suspension, a revocation) may only narrow it. The same checks
decide whether a new signature counts toward a pending proposal.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.consent.changes import widenings
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    PartySignature,
    SignatureType,
)
from shared.contracts.crypto.approvals import ApprovalSignatureError, verify_statement

KeyOf = Callable[[str], Ed25519PublicKey]
"""An organisation id -> the Ed25519 key the registry holds for it (raises LookupError if none)."""


class UnsignedVersionError(ValueError):
    """A published version that not every party signed, or that widens what they signed."""


def signature_problem(signature: PartySignature, version: Agreement, key_of: KeyOf) -> str | None:
    """Why `signature` is no valid word of a party on `version`'s exact content; None if it is."""
    statement = signature.statement
    if statement.organisation not in version.parties:
        return f"{statement.organisation} is not a party to {version.label}"
    expected = (version.id, version.version, version.content_hash)
    if (statement.agreement_id, statement.version, statement.contract_content_hash) != expected:
        return f"the signature of {statement.organisation} names other content than {version.label}"
    try:
        signed = verify_statement(key_of(statement.organisation), signature.jws)
    except LookupError:
        return f"no key of {statement.organisation} is registered"
    except ApprovalSignatureError as error:
        return f"the signature of {statement.organisation}: {error}"
    if signed != statement:
        return f"the signature of {statement.organisation} signs another statement"
    return None


def accepted_by(signatures: tuple[PartySignature, ...], version: Agreement, key_of: KeyOf) -> frozenset[str]:
    """The parties whose valid signatures accept `version`."""
    return frozenset(
        s.statement.organisation
        for s in signatures
        if s.statement.type is SignatureType.ACCEPT and signature_problem(s, version, key_of) is None
    )


def verified(published: AgreementPublished, key_of: KeyOf) -> AgreementPublished:
    """`published`, if every party signed its basis and it only narrows that; else raises
    UnsignedVersionError. Consent's state holds no other version."""
    approved, version = published.approved, published.agreement
    if approved.id != version.id or approved.version > version.version:
        raise UnsignedVersionError(f"{version.label} names {approved.label} as what its parties signed")
    missing = approved.parties - accepted_by(published.signatures, approved, key_of)
    if missing:
        raise UnsignedVersionError(f"{approved.label} lacks the signatures of {sorted(missing)}")
    if approved != version:
        widens = widenings(approved, version)
        if widens:
            raise UnsignedVersionError(f"{version.label} widens what its parties signed: {'; '.join(widens)}")
    return published


def counts_toward(proposal: AgreementProposed, signature: PartySignature, key_of: KeyOf) -> str | None:
    """Why `signature` cannot be added to `proposal`; None if it can."""
    problem = signature_problem(signature, proposal.agreement, key_of)
    if problem is not None:
        return problem
    already = [s for s in proposal.signatures if s.statement.organisation == signature.statement.organisation]
    if already:
        return f"{signature.statement.organisation} has signed this proposal already"
    return None
