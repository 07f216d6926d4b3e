"""A party's signature on an agreement version: a compact JWS, as FSC contracts are signed.

Layout: a compact JWS (RFC 7515) with the protected header
  {"alg": "EdDSA", "typ": "safetychain-agreement-signature+jws", "kid": <key id>}
(key id as in shared/contracts/crypto/signing.py: the first 16 hex digits of SHA-256 of the raw public
key) and as payload the RFC 8785 canonical JSON of an `ApprovalStatement`: agreement id,
version, `contract_content_hash`, organisation, type (accept or reject) and `signed_at`.
Ed25519 signs `base64url(header) "." base64url(payload)`. The payload names the content hash, so
a signature can never be carried over to other content, and the organisation, so it can never
be presented for another party.

A verifier MUST check the JWS with the key the registry holds for the statement's
organisation, and MUST then compare the statement with what it expects (agreement, version,
content hash): a valid signature on another statement proves nothing here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from shared.contracts.agreements import Agreement, ApprovalStatement, SignatureType
from shared.contracts.crypto.signing import key_id

JWS_TYPE: Final = "safetychain-agreement-signature+jws"
_JWS = jwt.PyJWS(options={"verify_signature": True})


class ApprovalSignatureError(ValueError):
    """The JWS is malformed, not signed by the expected key, or carries no statement."""


def sign_statement(private_key: Ed25519PrivateKey, statement: ApprovalStatement) -> str:
    """The compact JWS of `statement`, signed with the party's own key."""
    payload = rfc8785.dumps(statement.model_dump(mode="json"))
    headers = {"typ": JWS_TYPE, "kid": key_id(private_key.public_key())}
    return _JWS.encode(payload, private_key, algorithm="EdDSA", headers=headers)


def sign_version(
    private_key: Ed25519PrivateKey,
    agreement: Agreement,
    organisation: str,
    type: SignatureType = SignatureType.ACCEPT,
    signed_at: datetime | None = None,
) -> str:
    """`organisation`'s signed word on `agreement`'s exact content (its content hash)."""
    statement = ApprovalStatement(
        agreement_id=agreement.id,
        version=agreement.version,
        contract_content_hash=agreement.content_hash,
        organisation=organisation,
        type=type,
        signed_at=signed_at or datetime.now(UTC),
    )
    return sign_statement(private_key, statement)


def verify_statement(public_key: Ed25519PublicKey, token: str) -> ApprovalStatement:
    """The statement `token` carries, if `public_key` signed it; ApprovalSignatureError if not."""
    try:
        header = _JWS.get_unverified_header(token)
        if header.get("typ") != JWS_TYPE:
            raise ApprovalSignatureError("not an agreement signature")
        payload = _JWS.decode(token, public_key, algorithms=["EdDSA"])
        statement = ApprovalStatement.model_validate_json(payload)
    except jwt.InvalidTokenError as error:
        raise ApprovalSignatureError(f"the signature does not verify: {type(error).__name__}") from error
    except ValidationError as error:
        raise ApprovalSignatureError("the signed payload is no approval statement") from error
    if rfc8785.dumps(statement.model_dump(mode="json")) != payload:
        raise ApprovalSignatureError("the signed payload is not in canonical form")
    return statement


def unverified_statement(token: str) -> ApprovalStatement:
    """The statement a JWS claims, NOT verified: only to file it before a verifier checks it."""
    try:
        return ApprovalStatement.model_validate_json(
            _JWS.decode_complete(token, options={"verify_signature": False})["payload"]
        )
    except (jwt.InvalidTokenError, ValidationError) as error:
        raise ApprovalSignatureError("not an agreement signature") from error
