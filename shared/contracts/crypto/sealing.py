"""Seal bytes to one recipient's X25519 public key (an ECIES/HPKE-style box).

Byte layout of a sealed box (version 1):
  offset 0     1 byte   version, 0x01
  offset 1    32 bytes  ephemeral X25519 public key (raw)
  offset 33   12 bytes  AES-GCM nonce
  offset 45    n bytes  AES-256-GCM ciphertext, 16-byte tag at its end

key = HKDF-SHA256(ikm = X25519(ephemeral, recipient), salt = ephemeral_pub || recipient_pub,
                  info = b"safety-chain/seal/v1", length = 32)
The associated data binds the box to its context (e.g. signal id and recipient); opening
with other associated data fails, so a box cannot be replayed into another record.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = b"\x01"
_INFO = b"safety-chain/seal/v1"
_HEADER = 1 + 32 + 12


class SealError(ValueError):
    """The box is malformed, meant for another key, or was tampered with."""


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _derive(shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_pub + recipient_pub, info=_INFO).derive(
        shared
    )


def seal(recipient: X25519PublicKey, plaintext: bytes, associated_data: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_pub = _raw(ephemeral.public_key())
    key = _derive(ephemeral.exchange(recipient), ephemeral_pub, _raw(recipient))
    nonce = os.urandom(12)
    return VERSION + ephemeral_pub + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(recipient: X25519PrivateKey, box: bytes, associated_data: bytes) -> bytes:
    if len(box) < _HEADER + 16 or box[:1] != VERSION:
        raise SealError("not a version-1 sealed box")
    ephemeral_pub, nonce, ciphertext = box[1:33], box[33:45], box[45:]
    key = _derive(
        recipient.exchange(X25519PublicKey.from_public_bytes(ephemeral_pub)),
        ephemeral_pub,
        _raw(recipient.public_key()),
    )
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
    except InvalidTag as error:
        raise SealError("sealed box does not open with this key and context") from error


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def personal_payload_context(signal_id: str, subject: str) -> bytes:
    """Associated data of a signal's personal payload, encrypted with its subject's data key."""
    return f"safety-chain/personal/v1|{signal_id}|{subject}".encode()


def delivery_context(delivery_id: str, recipient: str) -> bytes:
    """Associated data of a delivery, sealed by consent to one partner (the recipient's own
    delivery id: the platform's signal id never reaches a partner)."""
    return f"safety-chain/delivery/v2|{delivery_id}|{recipient}".encode()


def intake_context(record_id: str, recipient: str) -> bytes:
    """Associated data of an intake record's value (the signal), sealed by its publisher."""
    return f"safety-chain/intake/v1|{record_id}|{recipient}".encode()


def data_key_context(subject: str, municipality: str, recipient: str) -> bytes:
    """Associated data of the data key of what `municipality` provided about `subject`, sealed by
    signals to consent: a sealed key moved under another subject or municipality does not open."""
    return f"safety-chain/data-key/v2|{subject}|{municipality}|{recipient}".encode()
