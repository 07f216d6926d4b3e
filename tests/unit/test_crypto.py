"""Sealing, pseudonyms and key files: the crypto behind named functions."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.contracts.crypto.keys import KeyRing, MissingKeyError
from shared.contracts.crypto.pseudonyms import partner_pseudonym, subject_pseudonym
from shared.contracts.crypto.sealing import SealError, open_sealed, seal


def test_a_sealed_box_opens_with_the_recipient_key_and_context() -> None:
    recipient = X25519PrivateKey.generate()
    box = seal(recipient.public_key(), b"geheim", b"ctx")
    assert open_sealed(recipient, box, b"ctx") == b"geheim"


def test_the_byte_layout_is_version_ephemeral_key_nonce_ciphertext() -> None:
    box = seal(X25519PrivateKey.generate().public_key(), b"12345", b"")
    assert box[0] == 1
    assert len(box) == 1 + 32 + 12 + len(b"12345") + 16


@pytest.mark.parametrize("tamper", ["other-key", "other-context", "flipped-bit", "truncated"])
def test_a_sealed_box_does_not_open_otherwise(tamper: str) -> None:
    recipient = X25519PrivateKey.generate()
    box = seal(recipient.public_key(), b"geheim", b"ctx")
    key, context = recipient, b"ctx"
    if tamper == "other-key":
        key = X25519PrivateKey.generate()
    elif tamper == "other-context":
        context = b"ctx2"
    elif tamper == "flipped-bit":
        box = box[:-1] + bytes([box[-1] ^ 1])
    else:
        box = box[:40]
    with pytest.raises(SealError):
        open_sealed(key, box, context)


def test_subject_pseudonym_is_the_documented_hmac() -> None:
    key = bytes(range(32))
    expected = hmac.new(key, b"person:999990019", hashlib.sha256).hexdigest()[:32]
    assert subject_pseudonym(key, "person", "999990019") == expected
    assert subject_pseudonym(bytes(32), "person", "999990019") != expected


def test_partner_pseudonyms_differ_per_partner() -> None:
    key = bytes(32)
    a = partner_pseudonym(key, "riec-amsterdam", "abc")
    b = partner_pseudonym(key, "veilig-thuis-amsterdam", "abc")
    assert a != b and len(a) == 32


def test_keys_are_generated_once_in_development_and_reused(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path, generate_missing=True)
    first = ring.secret("pseudonyms")
    assert KeyRing(tmp_path, generate_missing=True).secret("pseudonyms") == first
    assert (tmp_path / "pseudonyms.secret").stat().st_mode & 0o777 == 0o600


def test_production_refuses_to_invent_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(MissingKeyError):
        KeyRing(tmp_path, generate_missing=False).x25519_private("consent")
