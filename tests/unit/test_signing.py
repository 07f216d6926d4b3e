"""Record signatures: the signed bytes, what breaks a signature, and why verification refuses."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.crypto.signing import (
    DOMAIN,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNED_HEADERS,
    SignatureError,
    key_id,
    sign_record,
    signing_input,
    verify_record,
)
from shared.envelope import Headers

SEED = bytes(range(32))
VALUE = b'{"schema_version":1,"category":"huiselijk_geweld"}'
HEADERS: Headers = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"6f1c5a52-3f5e-4d2b-9a51-2f0b8f6c7d10"),
    ("ce_source", b"signals"),
    ("ce_type", b"nl.safetychain.signal.accepted.v1"),
    ("ce_time", b"2026-11-28T12:00:00+00:00"),
    ("content-type", b"application/json"),
    ("ce_subject", b"0123456789abcdef0123456789abcdef"),
]
# Pinned once from this implementation; Ed25519 is deterministic, so they never change unless the
# layout does (and then every signature in flight breaks: bump the version in DOMAIN instead).
VECTOR_SIGNING_INPUT_SHA256 = "32dc4dad7bd5078328b6287824e8ba724c647469492541d7b7e243171897e717"
VECTOR_SIGNATURE = (
    "f3b60e15c9e9f98d7e3761ecdcf2087e7c71ae71df83a13c91176dca995ec965"
    "99f404d14063f65788545d1caeec7349f10da97e5d122fcf7daba4d5dc6da405"
)
VECTOR_KEY_ID = "56475aa75463474c"


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def replaced(headers: Headers, name: str, raw: bytes) -> Headers:
    return [(header, raw if header == name else value) for header, value in headers]


def without(headers: Headers, name: str) -> Headers:
    return [(header, value) for header, value in headers if header != name]


def header(headers: Headers, name: str) -> bytes:
    return next(value for header, value in headers if header == name)


def test_a_signed_record_verifies_with_the_signing_key() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    assert signed[: len(HEADERS)] == HEADERS
    assert verify_record([key.public_key()], VALUE, signed) == key.public_key()


def test_the_verifying_key_is_picked_by_its_key_id() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    assert header(signed, KEY_ID_HEADER) == key_id(key.public_key()).encode()
    assert verify_record([other.public_key(), key.public_key()], VALUE, signed) == key.public_key()


def test_signing_again_replaces_the_earlier_signature() -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = sign_record(second, VALUE, sign_record(first, VALUE, HEADERS))
    assert [name for name, _ in signed].count(SIGNATURE_HEADER) == 1
    assert [name for name, _ in signed].count(KEY_ID_HEADER) == 1
    assert verify_record([second.public_key()], VALUE, signed) == second.public_key()


def test_the_signature_is_canonical_base64url_of_64_bytes() -> None:
    encoded = header(sign_record(vector_key(), VALUE, HEADERS), SIGNATURE_HEADER)
    assert encoded == base64.urlsafe_b64encode(bytes.fromhex(VECTOR_SIGNATURE))
    assert len(base64.urlsafe_b64decode(encoded)) == 64


def test_the_test_vector_is_pinned() -> None:
    # A fixed key, value and headers give a fixed signing input and (deterministic) signature.
    key = vector_key()
    assert hashlib.sha256(signing_input(VALUE, HEADERS)).hexdigest() == VECTOR_SIGNING_INPUT_SHA256
    assert key.sign(signing_input(VALUE, HEADERS)).hex() == VECTOR_SIGNATURE
    assert key_id(key.public_key()) == VECTOR_KEY_ID


def test_the_key_id_is_the_start_of_the_sha256_of_the_raw_public_key() -> None:
    public = vector_key().public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert key_id(public) == hashlib.sha256(raw).hexdigest()[:16]


def test_the_signing_input_follows_the_documented_layout() -> None:
    headers: Headers = [("ce_id", b"abc"), ("ce_traceparent", b"ignored"), ("ce_subject", b"")]
    expected = DOMAIN
    for name in SIGNED_HEADERS:
        expected += bytes([len(name)]) + name.encode()
        if name == "ce_id":
            expected += b"\x01" + (3).to_bytes(4, "big") + b"abc"
        elif name == "ce_subject":
            expected += b"\x01" + (0).to_bytes(4, "big")
        else:
            expected += b"\x00" + (0).to_bytes(4, "big")
    expected += hashlib.sha256(b"value").digest()
    assert signing_input(b"value", headers) == expected


def test_an_absent_header_and_an_empty_one_sign_differently() -> None:
    assert signing_input(VALUE, without(HEADERS, "ce_subject")) != signing_input(
        VALUE, replaced(HEADERS, "ce_subject", b"")
    )


def test_header_order_does_not_change_the_signing_input() -> None:
    assert signing_input(VALUE, list(reversed(HEADERS))) == signing_input(VALUE, HEADERS)


def test_a_duplicated_signed_header_is_refused() -> None:
    with pytest.raises(SignatureError, match="duplicate header") as caught:
        signing_input(VALUE, [*HEADERS, ("ce_time", b"2030-01-01T00:00:00+00:00")])
    assert caught.value.reason == "bad_signature"


def test_a_record_with_a_smuggled_second_signed_header_does_not_verify() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], VALUE, [*signed, ("ce_source", b"gm0363")])
    assert caught.value.reason == "bad_signature"


def tampered(signed: Headers, change: str) -> tuple[bytes, Headers]:
    if change == "value-byte":
        return VALUE[:-1] + b"]", signed
    if change == "ce_time":
        return VALUE, replaced(signed, "ce_time", b"2026-11-28T12:00:01+00:00")
    if change == "added-ce_subject":
        return VALUE, [*signed, ("ce_subject", b"ffffffffffffffffffffffffffffffff")]
    if change == "removed-content-type":
        return VALUE, without(signed, "content-type")
    raise AssertionError(change)


@pytest.mark.parametrize("change", ["value-byte", "ce_time", "added-ce_subject", "removed-content-type"])
def test_a_change_to_the_value_or_a_signed_header_breaks_the_signature(change: str) -> None:
    key = Ed25519PrivateKey.generate()
    # ce_subject is left out at signing, so that adding one later is a change.
    signed = sign_record(key, VALUE, without(HEADERS, "ce_subject"))
    value, headers = tampered(signed, change)
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], value, headers)
    assert caught.value.reason == "bad_signature"


def test_a_header_outside_the_signed_set_may_change() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(
        key, VALUE, [*HEADERS, ("ce_traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")]
    )
    relayed = [
        *replaced(signed, "ce_traceparent", b"00-" + b"c" * 32 + b"-" + b"d" * 16 + b"-01"),
        ("x", b"y"),
    ]
    assert verify_record([key.public_key()], VALUE, relayed) == key.public_key()


def test_a_record_without_signature_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], VALUE, HEADERS)
    assert caught.value.reason == "missing_signature"


@pytest.mark.parametrize(
    "encoded",
    [
        b"not base64!",
        base64.urlsafe_b64encode(bytes(63)),
        base64.urlsafe_b64encode(bytes(65)),
        base64.urlsafe_b64encode(bytes(64)).rstrip(b"="),
        base64.standard_b64encode(b"\xfb" * 64),
        b"",
    ],
    ids=["not-base64", "63-bytes", "65-bytes", "unpadded", "standard-alphabet", "empty"],
)
def test_a_malformed_signature_is_refused(encoded: bytes) -> None:
    key = Ed25519PrivateKey.generate()
    signed = replaced(sign_record(key, VALUE, HEADERS), SIGNATURE_HEADER, encoded)
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], VALUE, signed)
    assert caught.value.reason == "malformed_signature"


def test_two_signature_headers_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    with pytest.raises(SignatureError) as caught:
        verify_record(
            [key.public_key()], VALUE, [*signed, (SIGNATURE_HEADER, header(signed, SIGNATURE_HEADER))]
        )
    assert caught.value.reason == "malformed_signature"


def test_a_signature_by_an_unknown_key_is_refused() -> None:
    signer, known = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError) as caught:
        verify_record([known.public_key()], VALUE, sign_record(signer, VALUE, HEADERS))
    assert caught.value.reason == "unknown_key"


def test_no_key_id_is_refused_when_several_keys_could_have_signed() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = without(sign_record(key, VALUE, HEADERS), KEY_ID_HEADER)
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key(), other.public_key()], VALUE, signed)
    assert caught.value.reason == "unknown_key"


def test_no_key_id_is_accepted_when_only_one_key_is_given() -> None:
    key = Ed25519PrivateKey.generate()
    signed = without(sign_record(key, VALUE, HEADERS), KEY_ID_HEADER)
    assert verify_record([key.public_key()], VALUE, signed) == key.public_key()


def test_a_key_id_that_lies_does_not_help_a_forger() -> None:
    # The forger signs with its own key but names the genuine key: the signature is checked
    # against the genuine key only, and fails.
    genuine, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = replaced(
        sign_record(forger, VALUE, HEADERS), KEY_ID_HEADER, key_id(genuine.public_key()).encode()
    )
    with pytest.raises(SignatureError) as caught:
        verify_record([genuine.public_key()], VALUE, forged)
    assert caught.value.reason == "bad_signature"


def test_a_signature_error_is_a_value_error_with_a_message() -> None:
    error = SignatureError("unknown_key", "key id 'x' is none of the given keys")
    assert isinstance(error, ValueError)
    assert error.reason == "unknown_key" and str(error) == "key id 'x' is none of the given keys"
    assert str(SignatureError("missing_signature")) == "missing_signature"
