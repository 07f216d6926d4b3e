"""Ed25519 signatures over Kafka records: sign the bytes as sent, never re-serialise to verify.

A signature covers the record value exactly as it travels and the CloudEvents headers that
carry meaning (`SIGNED_HEADERS`). Other headers (e.g. `ce_traceparent`) may be rewritten in
transit without breaking it. The signature travels in two headers:
  ce_signature       base64url (RFC 4648 section 5, with padding) of the 64-byte signature, ASCII
  ce_signaturekeyid  key id of the signing key, ASCII (see below)

Key id = the first 16 hex digits (lower case) of SHA-256(raw 32-byte Ed25519 public key).

Signing input (version 1), the exact bytes that Ed25519 signs:
  b"safety-chain/record-signature/v1\\n"     domain separation, 33 bytes
  for each name in SIGNED_HEADERS, in that order:
    1 byte    length of the header name
    n bytes   the header name, ASCII
    1 byte    presence: 0x01 present, 0x00 absent
    4 bytes   big-endian length of the header value (0 when absent)
    m bytes   the header value, raw bytes as sent (nothing when absent)
  32 bytes  SHA-256(record value)

Every field is either fixed or length-prefixed, so two different records never share a signing
input; an absent header and an empty one differ in the presence byte. A signed header that
occurs twice is refused: a consumer could read either copy, and the signature cannot say which
one the signer meant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.envelope import Headers

SIGNATURE_HEADER = "ce_signature"
KEY_ID_HEADER = "ce_signaturekeyid"

SIGNED_HEADERS: tuple[str, ...] = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "content-type",
)

DOMAIN = b"safety-chain/record-signature/v1\n"
SIGNATURE_BYTES = 64
KEY_ID_CHARS = 16

SignatureReason = Literal["missing_signature", "malformed_signature", "bad_signature", "unknown_key"]


class SignatureError(ValueError):
    """A record's signature is absent, malformed, by an unknown key, or does not verify.

    `reason` is a stable code (fit for a dead-letter record); the message explains it to people.
    """

    def __init__(self, reason: SignatureReason, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason: SignatureReason = reason


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names a key, proves nothing."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:KEY_ID_CHARS]


def signing_input(value: bytes, headers: Headers) -> bytes:
    """The exact bytes that are signed (layout in the module docstring).

    Raises SignatureError("bad_signature") when a signed header occurs more than once.
    """
    present: dict[str, bytes] = {}
    for name, raw in headers:
        if name not in SIGNED_HEADERS:
            continue
        if name in present:
            raise SignatureError("bad_signature", f"duplicate header {name!r}")
        # Kafka allows a null header value; typed code never makes one, but a hostile record may.
        if not isinstance(raw, bytes):
            raise SignatureError("bad_signature", f"header {name!r} has no byte value")
        present[name] = raw
    parts = [DOMAIN]
    for name in SIGNED_HEADERS:
        encoded_name = name.encode("ascii")
        parts.append(len(encoded_name).to_bytes(1, "big") + encoded_name)
        raw_value = present.get(name)
        if raw_value is None:
            parts.append(b"\x00" + (0).to_bytes(4, "big"))
        else:
            parts.append(b"\x01" + len(raw_value).to_bytes(4, "big") + raw_value)
    parts.append(hashlib.sha256(value).digest())
    return b"".join(parts)


def _without_signature(headers: Headers) -> Headers:
    return [(name, raw) for name, raw in headers if name not in (SIGNATURE_HEADER, KEY_ID_HEADER)]


def sign_record(private_key: Ed25519PrivateKey, value: bytes, headers: Headers) -> Headers:
    """The headers to send with `value`: `headers` without any earlier signature, plus this one.

    The caller MUST send exactly `value` and the returned headers; any change to the value or a
    signed header after this call breaks the signature.
    """
    unsigned = _without_signature(headers)
    signature = private_key.sign(signing_input(value, unsigned))
    return [
        *unsigned,
        (SIGNATURE_HEADER, base64.urlsafe_b64encode(signature)),
        (KEY_ID_HEADER, key_id(private_key.public_key()).encode("ascii")),
    ]


def _single(headers: Headers, name: str) -> bytes | None:
    values = [raw for header, raw in headers if header == name]
    if len(values) > 1:
        raise SignatureError("malformed_signature", f"duplicate header {name!r}")
    if values and not isinstance(values[0], bytes):
        raise SignatureError("malformed_signature", f"header {name!r} has no byte value")
    return values[0] if values else None


def _decode_signature(encoded: bytes) -> bytes:
    try:
        signature = base64.b64decode(encoded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as error:
        raise SignatureError("malformed_signature", "ce_signature is not base64url") from error
    # Only the canonical encoding is accepted, so one signature has one spelling.
    if len(signature) != SIGNATURE_BYTES or base64.urlsafe_b64encode(signature) != encoded:
        raise SignatureError("malformed_signature", "ce_signature is not base64url of 64 bytes")
    return signature


def _candidates(public_keys: Sequence[Ed25519PublicKey], named: bytes | None) -> list[Ed25519PublicKey]:
    if named is None:
        if len(public_keys) == 1:
            return [public_keys[0]]
        raise SignatureError(
            "unknown_key", f"no {KEY_ID_HEADER} header and {len(public_keys)} candidate keys"
        )
    matching = [key for key in public_keys if key_id(key).encode("ascii") == named]
    if not matching:
        raise SignatureError("unknown_key", f"key id {named!r} is none of the given keys")
    return matching


def verify_record(
    public_keys: Sequence[Ed25519PublicKey], value: bytes, headers: Headers
) -> Ed25519PublicKey:
    """Verify a record as received; returns the key that signed it, or raises SignatureError.

    The caller MUST pass `value` and `headers` exactly as they came off the wire (no
    re-serialisation), and MUST pass only the keys of the organisation the record claims as
    its `ce_source`: a valid signature by any other organisation's key proves nothing about
    this record. Only the SIGNED_HEADERS are vouched for; the caller MUST NOT trust any other
    header because the signature verified.

    Checks, in order: a ce_signature header exists (missing_signature); it is the canonical
    base64url of 64 bytes (malformed_signature); ce_signaturekeyid names one of the keys, or is
    absent with exactly one key given (unknown_key); the signature verifies (bad_signature).
    """
    encoded = _single(headers, SIGNATURE_HEADER)
    if encoded is None:
        raise SignatureError("missing_signature", f"record carries no {SIGNATURE_HEADER} header")
    signature = _decode_signature(encoded)
    candidates = _candidates(public_keys, _single(headers, KEY_ID_HEADER))
    message = signing_input(value, headers)
    for public_key in candidates:
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            continue
        return public_key
    raise SignatureError("bad_signature", "signature does not verify over this value and these headers")
