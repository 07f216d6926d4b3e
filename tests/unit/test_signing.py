"""Record signatures: the signed bytes, what breaks a signature, and why verification refuses.

Version 2 signs every ce_ header the producer wrote and content-type (not a fixed list), so a
change to any of them, dropping one or adding one breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.contracts.crypto.signing import (
    DOMAIN,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    is_signed_header,
    key_id,
    sign_record,
    signing_input,
    verify_record,
)
from shared.contracts.envelope import Headers

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
    ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("ce_signalid", b"6f1c5a52-3f5e-4d2b-9a51-2f0b8f6c7d10"),
    ("ce_purpose", b"veiligheid_huiselijk_geweld"),
]
# Pinned once from this implementation (layout v2; test_the_signing_input_follows_the_documented_layout
# rebuilds an input independently); Ed25519 is deterministic, so they never change unless the
# layout does (and then every signature in flight breaks: bump the version in DOMAIN instead).
VECTOR_SIGNING_INPUT_SHA256 = "8d81f6182fc6e0941a8fc024d2293242369d88e3ae2259d0b7268b26862e01ed"
VECTOR_SIGNATURE = (
    "6cb0f9a8d4aaea6adedcae365011ecbc81843a5784170fd26ad0bfcd68aac087"
    "ffb7af17455e5dfcbf2debd6d5313f1c6ba5f1d2bd14833fd82ad13a210b4107"
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
    headers: Headers = [
        ("ce_id", b"abc"),
        ("x-relay", b"not signed"),
        ("content-type", b"application/json"),
        ("ce_subject", b""),
        (SIGNATURE_HEADER, b"not signed either"),
    ]
    expected = DOMAIN + (3).to_bytes(2, "big")
    # Sorted by name: content-type < ce_id < ce_subject ('c','o' > 'c','e').
    for name, value in [("ce_id", b"abc"), ("ce_subject", b""), ("content-type", b"application/json")]:
        expected += bytes([len(name)]) + name.encode() + len(value).to_bytes(4, "big") + value
    expected += hashlib.sha256(b"value").digest()
    assert signing_input(b"value", headers) == expected


def test_every_ce_header_and_content_type_is_signed_but_the_signature_itself() -> None:
    assert all(is_signed_header(name) for name in ("ce_purpose", "ce_traceparent", "ce_new", "content-type"))
    assert not any(
        is_signed_header(name) for name in (SIGNATURE_HEADER, KEY_ID_HEADER, "correlation_id", "Content-Type")
    )


def test_an_absent_header_and_an_empty_one_sign_differently() -> None:
    assert signing_input(VALUE, without(HEADERS, "ce_subject")) != signing_input(
        VALUE, replaced(HEADERS, "ce_subject", b"")
    )


def test_header_order_does_not_change_the_signing_input() -> None:
    assert signing_input(VALUE, list(reversed(HEADERS))) == signing_input(VALUE, HEADERS)


@pytest.mark.parametrize("name", ["ce_time", "ce_purpose", "content-type"])
def test_a_duplicated_signed_header_is_refused(name: str) -> None:
    with pytest.raises(SignatureError, match="duplicate header") as caught:
        signing_input(VALUE, [*HEADERS, (name, header(HEADERS, name))])
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
    action, _, name = change.partition(":")
    if action == "changed":
        return VALUE, replaced(signed, name, header(signed, name) + b"x")
    if action == "emptied":
        return VALUE, replaced(signed, name, b"")
    if action == "dropped":
        return VALUE, without(signed, name)
    if action == "added":
        return VALUE, [*signed, (name, b"1")]
    raise AssertionError(change)


CHANGES = [
    "value-byte",
    *(f"{action}:{name}" for name, _ in HEADERS for action in ("changed", "emptied", "dropped")),
    "added:ce_retentiondays",
    "added:ce_new",
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_to_the_value_or_any_ce_header_breaks_the_signature(change: str) -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    value, headers = tampered(signed, change)
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], value, headers)
    assert caught.value.reason == "bad_signature"


def test_a_header_outside_the_signed_set_may_be_added_and_carries_no_meaning() -> None:
    # FastStream's broker.publish adds correlation_id after the record was signed.
    key = Ed25519PrivateKey.generate()
    relayed = [*sign_record(key, VALUE, HEADERS), ("correlation_id", b"0f7b"), ("x", b"y")]
    assert verify_record([key.public_key()], VALUE, relayed) == key.public_key()


@pytest.mark.parametrize("name", ["ce_purpose", "content-type", "ce_new"])
def test_a_signed_header_without_a_value_is_a_signature_error(name: str) -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_record(key, VALUE, HEADERS)
    nulled: list[tuple[str, Any]] = [*without(signed, name), (name, None)]
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], VALUE, nulled)
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize("name", [SIGNATURE_HEADER, KEY_ID_HEADER])
def test_a_signature_header_without_a_value_is_a_signature_error(name: str) -> None:
    key = Ed25519PrivateKey.generate()
    nulled: list[tuple[str, Any]] = [*without(sign_record(key, VALUE, HEADERS), name), (name, None)]
    with pytest.raises(SignatureError) as caught:
        verify_record([key.public_key()], VALUE, nulled)
    assert caught.value.reason == "malformed_signature"


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


@pytest.mark.parametrize("keys", [1, 2])
def test_a_record_without_a_key_id_is_refused(keys: int) -> None:
    key = Ed25519PrivateKey.generate()
    candidates = [key.public_key(), Ed25519PrivateKey.generate().public_key()][:keys]
    signed = without(sign_record(key, VALUE, HEADERS), KEY_ID_HEADER)
    with pytest.raises(SignatureError) as caught:
        verify_record(candidates, VALUE, signed)
    assert caught.value.reason == "malformed_signature"


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
