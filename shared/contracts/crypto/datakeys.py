"""Data keys per subject and providing municipality (crypto-shredding), wrapped under a KEK.

What each municipality provided about a subject is encrypted with a random data key of that
subject and that municipality alone (ADR 0009), so each controller's erasure shreds its own. The
key is stored only wrapped by the key-encryption key (KEK); destroying it leaves every copy of
the payloads it encrypted, on every topic and backup, unreadable: that is erasure on an immutable
log.

Byte layout of an encrypted payload (version 1), `encrypt`:
  offset 0     1 byte   version, 0x01
  offset 1    12 bytes  AES-GCM nonce (random)
  offset 13    n bytes  AES-256-GCM ciphertext of the plaintext, 16-byte tag at its end
  key = the 32-byte data key; associated data = the caller's (e.g. signal id and subject)

Byte layout of a wrapped data key (version 1), `wrap`: 61 bytes
  offset 0     1 byte   version, 0x01
  offset 1    12 bytes  AES-GCM nonce (random)
  offset 13   48 bytes  AES-256-GCM ciphertext of the 32-byte data key, 16-byte tag at its end
  key = the 32-byte KEK; associated data = the context, e.g.
  b"data-key/v2|" + subject pseudonym + b"|" + municipality (services/signals/keystore.py)

The context binds a wrapped key to its subject and municipality: a wrapped key copied into
another row does not unwrap there, so whoever can write the key table still cannot make one
subject's (or one municipality's) payloads readable under another, nor undo an erasure by
copying a key back.

Random 96-bit nonces are safe here: a data key encrypts the few payloads one municipality
provided about one subject, and the KEK wraps one key per subject and municipality, far below
the 2**32 messages per key that NIST SP 800-38D allows for random nonces.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
DATA_KEY_BYTES = 32
KEK_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(VERSION) + NONCE_BYTES
WRAPPED_KEY_BYTES = HEADER_BYTES + DATA_KEY_BYTES + TAG_BYTES


class DecryptionError(ValueError):
    """The box is malformed, of another version, for another key or context, or was tampered with."""


def new_data_key() -> bytes:
    """A fresh random 32-byte AES-256 data key."""
    return os.urandom(DATA_KEY_BYTES)


def _require_key(key: bytes, what: str) -> None:
    if len(key) != DATA_KEY_BYTES:
        raise ValueError(f"{what} must be {DATA_KEY_BYTES} bytes, got {len(key)}")


def _seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def _open(key: bytes, box: bytes, associated_data: bytes, what: str) -> bytes:
    if len(key) != DATA_KEY_BYTES:
        raise DecryptionError(f"{what} does not open: the key is not {DATA_KEY_BYTES} bytes")
    if len(box) < HEADER_BYTES + TAG_BYTES:
        raise DecryptionError(f"{what} is truncated")
    if box[:1] != VERSION:
        raise DecryptionError(f"{what} has unknown version {box[0]}")
    try:
        return AESGCM(key).decrypt(box[1:HEADER_BYTES], box[HEADER_BYTES:], associated_data)
    except InvalidTag as error:
        raise DecryptionError(f"{what} does not open with this key and associated data") from error


def encrypt(data_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt a subject's payload; raises ValueError when the data key is not 32 bytes."""
    _require_key(data_key, "a data key")
    return _seal(data_key, plaintext, associated_data)


def decrypt(data_key: bytes, box: bytes, associated_data: bytes) -> bytes:
    """Open a payload from `encrypt`; raises DecryptionError on any failure."""
    return _open(data_key, box, associated_data, "encrypted payload")


def wrap(kek: bytes, data_key: bytes, context: bytes) -> bytes:
    """Wrap a data key under the KEK, bound to `context`; raises ValueError on a wrong key length."""
    _require_key(kek, "the KEK")
    _require_key(data_key, "a data key")
    return _seal(kek, data_key, context)


def unwrap(kek: bytes, wrapped: bytes, context: bytes) -> bytes:
    """The data key inside `wrapped`; raises DecryptionError on any failure."""
    if len(wrapped) != WRAPPED_KEY_BYTES:
        raise DecryptionError(f"a wrapped key is {WRAPPED_KEY_BYTES} bytes, got {len(wrapped)}")
    return _open(kek, wrapped, context, "wrapped key")
