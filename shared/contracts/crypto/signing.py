"""Ed25519 signatures over Kafka records: sign the bytes as sent, never re-serialise to verify.

A signature covers the record value exactly as it travels and every header a consumer may act
on: every CloudEvents header (`ce_*`) the producer wrote, plus `content-type`, except the two
signature headers themselves. The signed set is not a list kept by hand: it is whatever the
producer wrote, so changing, dropping or adding any such header breaks the signature, and a
new extension header is signed the day a producer starts to write it. The signature travels in
two headers, both required:
  ce_signature       base64url (RFC 4648 section 5, with padding) of the 64-byte signature, ASCII
  ce_signaturekeyid  key id of the signing key, ASCII (see below)

Key id = the first 16 hex digits (lower case) of SHA-256(raw 32-byte Ed25519 public key).

Headers outside the signed set (neither `ce_*` nor `content-type`) are not vouched for and
carry no meaning in safety-chain: FastStream's `broker.publish` adds a `correlation_id` header
of its own after a record was signed (faststream/kafka/response.py `headers_to_publish`), which
is why unsigned headers must stay possible. A consumer MUST NOT act on them. `ce_traceparent`
is signed too: nothing between producer and consumer rewrites it, and the audit log keys its
correlation on it.

Signing input (version 2), the exact bytes that Ed25519 signs:
  b"safety-chain/record-signature/v2\\n"     domain separation, 33 bytes
  2 bytes   big-endian count of signed headers
  for each signed header, sorted by the UTF-8 bytes of its name:
    1 byte    length of the header name (1..255)
    n bytes   the header name, UTF-8
    4 bytes   big-endian length of the header value
    m bytes   the header value, raw bytes as sent
  32 bytes  SHA-256(record value)

Every field is either fixed or length-prefixed and the headers are counted, so two different
records never share a signing input; an absent header and an empty one differ (the empty one is
counted and named). A signed header that occurs twice is refused: a consumer could read either
copy, and the signature cannot say which one the signer meant. A signed header without a value
(Kafka allows a null header value) is refused too. Both refusals are SignatureErrors
(`bad_signature`), never another exception.
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

from shared.contracts.envelope import Headers

SIGNATURE_HEADER = "ce_signature"
KEY_ID_HEADER = "ce_signaturekeyid"

CONTENT_TYPE_HEADER = "content-type"
UNSIGNED_CE_HEADERS = frozenset({SIGNATURE_HEADER, KEY_ID_HEADER})
"""The only ce_ headers outside the signed set: the signature cannot sign itself."""

DOMAIN = b"safety-chain/record-signature/v2\n"
MAX_NAME_BYTES = 255
MAX_SIGNED_HEADERS = 0xFFFF
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


def is_signed_header(name: str) -> bool:
    """Whether a header of this name is covered by the record's signature."""
    return (name.startswith("ce_") or name == CONTENT_TYPE_HEADER) and name not in UNSIGNED_CE_HEADERS


def signed_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The signed headers of a record, sorted by name (layout in the module docstring).

    Raises SignatureError("bad_signature") when a signed header occurs twice or has no value.
    """
    present: dict[bytes, tuple[str, bytes]] = {}
    for name, raw in headers:
        if not is_signed_header(name):
            continue
        encoded = name.encode("utf-8")
        if encoded in present:
            raise SignatureError("bad_signature", f"duplicate header {name!r}")
        # Kafka allows a null header value; typed code never makes one, but a hostile record may.
        if not isinstance(raw, bytes):
            raise SignatureError("bad_signature", f"header {name!r} has no byte value")
        if len(encoded) > MAX_NAME_BYTES:
            raise SignatureError("bad_signature", f"header name longer than {MAX_NAME_BYTES} bytes")
        present[encoded] = (name, raw)
    if len(present) > MAX_SIGNED_HEADERS:
        raise SignatureError("bad_signature", f"more than {MAX_SIGNED_HEADERS} signed headers")
    return [present[encoded] for encoded in sorted(present)]


def signing_input(value: bytes, headers: Headers) -> bytes:
    """The exact bytes that are signed (layout in the module docstring).

    Raises SignatureError("bad_signature") when a signed header occurs more than once or has
    no value.
    """
    signed = signed_headers(headers)
    parts = [DOMAIN, len(signed).to_bytes(2, "big")]
    for name, raw in signed:
        encoded = name.encode("utf-8")
        parts.append(len(encoded).to_bytes(1, "big") + encoded)
        parts.append(len(raw).to_bytes(4, "big") + raw)
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
        # Every record this project signs names its key: one without is not in the v2 format.
        raise SignatureError("malformed_signature", f"record carries no {KEY_ID_HEADER} header")
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
    this record. Only the signed headers (`is_signed_header`: every `ce_*` but the signature's
    own, and `content-type`) are vouched for; the caller MUST NOT act on any other header.

    Checks, in order: a ce_signature header exists (missing_signature); it is the canonical
    base64url of 64 bytes and ce_signaturekeyid is present, each once (malformed_signature);
    ce_signaturekeyid names one of the keys (unknown_key); no signed header occurs twice or
    without a value, and the signature verifies (bad_signature).
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
