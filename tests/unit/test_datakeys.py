"""Per-subject data keys: payload encryption, key wrapping, and every way they refuse to open."""

from __future__ import annotations

import pytest

from shared.contracts.crypto.datakeys import (
    DATA_KEY_BYTES,
    WRAPPED_KEY_BYTES,
    DecryptionError,
    decrypt,
    encrypt,
    new_data_key,
    unwrap,
    wrap,
)

AD = b"safety-chain/payload/v1|signal-1|subject-1"
CONTEXT = b"subject:0123456789abcdef0123456789abcdef"


def test_new_data_keys_are_32_random_bytes() -> None:
    keys = {new_data_key() for _ in range(16)}
    assert len(keys) == 16
    assert all(len(key) == DATA_KEY_BYTES == 32 for key in keys)


def test_a_payload_decrypts_with_its_data_key_and_associated_data() -> None:
    key = new_data_key()
    assert decrypt(key, encrypt(key, b"geheim", AD), AD) == b"geheim"
    assert decrypt(key, encrypt(key, b"", AD), AD) == b""


def test_the_payload_layout_is_version_nonce_ciphertext_and_tag() -> None:
    box = encrypt(new_data_key(), b"12345", AD)
    assert box[0] == 0x01
    assert len(box) == 1 + 12 + len(b"12345") + 16


def test_encrypting_twice_gives_different_boxes() -> None:
    key = new_data_key()
    first, second = encrypt(key, b"geheim", AD), encrypt(key, b"geheim", AD)
    assert first != second and first[1:13] != second[1:13]


def test_a_wrapped_key_unwraps_with_the_kek_and_context() -> None:
    kek, key = new_data_key(), new_data_key()
    assert unwrap(kek, wrap(kek, key, CONTEXT), CONTEXT) == key


def test_the_wrapped_key_layout_is_61_bytes_and_hides_the_key() -> None:
    kek, key = new_data_key(), new_data_key()
    wrapped = wrap(kek, key, CONTEXT)
    assert wrapped[0] == 0x01
    assert len(wrapped) == WRAPPED_KEY_BYTES == 1 + 12 + 32 + 16
    assert key not in wrapped


def flipped(box: bytes, at: int) -> bytes:
    return box[:at] + bytes([box[at] ^ 1]) + box[at + 1 :]


PAYLOAD_FAILURES = [
    "other-key",
    "other-associated-data",
    "flipped-nonce",
    "flipped-ciphertext",
    "flipped-tag",
    "truncated",
    "empty",
    "other-version",
    "short-key",
]


def break_open(failure: str, key: bytes, box: bytes, ad: bytes) -> tuple[bytes, bytes, bytes]:
    if failure == "other-key":
        return new_data_key(), box, ad
    if failure in ("other-associated-data", "other-context"):
        return key, box, ad + b"x"
    if failure == "flipped-nonce":
        return key, flipped(box, 1), ad
    if failure == "flipped-ciphertext":
        return key, flipped(box, 13), ad
    if failure == "flipped-tag":
        return key, flipped(box, len(box) - 1), ad
    if failure == "truncated":
        return key, box[:-1], ad
    if failure == "empty":
        return key, b"", ad
    if failure == "other-version":
        return key, b"\x02" + box[1:], ad
    if failure == "short-key":
        return key[:16], box, ad
    if failure == "too-long":
        return key, box + b"\x00", ad
    raise AssertionError(failure)


@pytest.mark.parametrize("failure", PAYLOAD_FAILURES)
def test_a_payload_does_not_decrypt_otherwise(failure: str) -> None:
    key = new_data_key()
    with pytest.raises(DecryptionError):
        decrypt(*break_open(failure, key, encrypt(key, b"geheim", AD), AD))


@pytest.mark.parametrize(
    "failure", [f.replace("associated-data", "context") for f in PAYLOAD_FAILURES] + ["too-long"]
)
def test_a_wrapped_key_does_not_unwrap_otherwise(failure: str) -> None:
    kek = new_data_key()
    with pytest.raises(DecryptionError):
        unwrap(*break_open(failure, kek, wrap(kek, new_data_key(), CONTEXT), CONTEXT))


def test_a_wrapped_key_is_bound_to_its_subject() -> None:
    # A wrapped key copied into another subject's row does not unwrap there.
    kek = new_data_key()
    wrapped = wrap(kek, new_data_key(), b"subject:a")
    with pytest.raises(DecryptionError):
        unwrap(kek, wrapped, b"subject:b")


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_keys_of_the_wrong_length_are_refused(length: int) -> None:
    with pytest.raises(ValueError):
        encrypt(bytes(length), b"geheim", AD)
    with pytest.raises(ValueError):
        wrap(bytes(length), new_data_key(), CONTEXT)
    with pytest.raises(ValueError):
        wrap(new_data_key(), bytes(length), CONTEXT)


def test_a_decryption_error_is_a_value_error() -> None:
    assert issubclass(DecryptionError, ValueError)
