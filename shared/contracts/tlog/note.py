"""C2SP signed notes (https://c2sp.org/signed-note, v1.0.0) with Ed25519, as Go's sumdb/note writes them.

A signed note is a text ending in a newline, a blank line, then one or more signature lines:

    <text, one or more lines, each ending in "\\n">
    \\n
    — <key name> <base64(4-byte key ID || signature)>\\n      (one per signature; "—" is U+2014)

The whole note is UTF-8 without ASCII control characters other than newline. The text is separated
from the signatures by the *last* blank line, and every signature covers the text exactly, its
final newline included (not the blank line). Key names are non-empty, without Unicode spaces or "+".

Key ID (byte layout):
  key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]
Signature type 0x01 is Ed25519 (RFC 8032) over the note text; 0x04 is the timestamped witness
cosignature of c2sp.org/tlog-cosignature (see `shared.contracts.tlog.checkpoint`). Other types are not
supported here: a note signed with them opens only if some supported known key also signed it.

Key encodings (the ones Go's golang.org/x/mod/sumdb/note reads and writes):
  vkey (public)    <name>+<hex key ID>+<base64(signature type || public key)>
  skey (private)   PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte Ed25519 seed)>
Hex is the 8 lower-case digits of the spec's fixed-length encoding; base64 is RFC 4648 section 4,
with padding.

Opening a note with a set of known verifiers, following the spec's MUSTs and SHOULDs:
- a signature whose (key name, key ID) matches no known verifier is ignored (kept as unverified),
  even if it shares the name or the ID (but not both) with a known key;
- every signature from a known key is verified, and if one fails the whole note is refused
  (`InvalidSignatureError`; the spec says SHOULD, Go does the same);
- at least one signature from a known key must verify (`UnverifiedNoteError` otherwise);
- a malformed note is refused (`NoteError`). Up to MAX_SIGNATURES = 100 signature lines are read,
  as Go does (the spec requires at least 16); a note with more is malformed.
Choices of ours, where the spec is silent: a repeated signature line is reported once; two known
verifiers with the same name and key ID are a configuration error (ValueError), as Go's
"ambiguous key"; a "Unicode space" in a key name is any character for which str.isspace() holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

SIGNATURE_TYPE_ED25519 = 0x01
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
MAX_SIGNATURES = 100

EM_DASH = "\u2014"
_SIGNATURE_PREFIX = EM_DASH + " "
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """The note, key or signature is malformed, or the note does not open; the message says why."""


class InvalidSignatureError(NoteError):
    """A signature from a known key does not verify: the whole note is refused."""

    def __init__(self, name: str, key_id: bytes) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id.hex()}")
        self.name = name
        self.key_id = key_id


class UnverifiedNoteError(NoteError):
    """No signature from a known key: the note must be ignored. `note` holds what was parsed."""

    def __init__(self, note: Note) -> None:
        super().__init__("note has no signature from a known key")
        self.note = note


class NoteSigner(Protocol):
    """Anything that signs note texts: a key name, its key ID and the signature function."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes:
        """The signature bytes that follow the key ID in the signature line."""
        ...


class NoteVerifier(Protocol):
    """Anything that verifies note signatures for one (key name, key ID)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether `signature` (the bytes after the key ID) is valid over the note text."""
        ...


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space, no "+", and no character a note may not hold."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and not _has_forbidden_characters(name)
    )


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    if not is_valid_key_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if not 0 <= signature_type <= 0xFF:
        raise ValueError(f"signature type is one byte, got {signature_type}")
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:KEY_ID_SIZE]


def encode_vkey(name: str, signature_type: int, public_key: bytes) -> str:
    """<name>+<hex key ID>+<base64(signature type || public key)>, the key ID computed from them."""
    kid = key_id(name, signature_type, public_key)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([signature_type]) + public_key).decode()}"


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """(key name, signature type, public key) of a vkey whose key ID is the recommended hash.

    Refuses a vkey with an invalid name, a key ID that is not 8 lower-case hex digits or does not
    match SHA-256(name || 0x0A || type || key)[:4], or key material that is not base64.
    """
    name, _, rest = vkey.partition("+")
    hex_id, _, key64 = rest.partition("+")
    if not is_valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(f"malformed vkey {vkey!r}")
    material = _b64decode(key64)
    if material is None or len(material) < 2:
        raise NoteError(f"malformed vkey {vkey!r}")
    signature_type, public_key = material[0], material[1:]
    if key_id(name, signature_type, public_key).hex() != hex_id:
        raise NoteError(f"vkey {vkey!r}: key ID does not match the name and key")
    return name, signature_type, public_key


class Ed25519KeyVerifier:
    """An Ed25519 public key under a name, for one signature type (`SIGNATURE_TYPE`): its key ID
    and vkey; subclasses say what a signature of their type signs (`verify`)."""

    SIGNATURE_TYPE = SIGNATURE_TYPE_ED25519

    def __init__(self, name: str, public_key: Ed25519PublicKey | bytes) -> None:
        if isinstance(public_key, bytes):
            if len(public_key) != ED25519_KEY_SIZE:
                raise NoteError(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, got {len(public_key)}")
            public_key = Ed25519PublicKey.from_public_bytes(public_key)
        self._name = name
        self._public_key = public_key
        self._raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self.SIGNATURE_TYPE, self._raw)

    @classmethod
    def _parse_vkey(cls, vkey: str, type_name: str) -> tuple[str, bytes]:
        name, signature_type, public_key = parse_vkey(vkey)
        if signature_type != cls.SIGNATURE_TYPE:
            raise NoteError(f"vkey {vkey!r} is of signature type {signature_type:#04x}, not {type_name}")
        if len(public_key) != ED25519_KEY_SIZE:
            raise NoteError(f"vkey {vkey!r}: an Ed25519 public key is {ED25519_KEY_SIZE} bytes")
        return name, public_key

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._raw

    @property
    def vkey(self) -> str:
        return encode_vkey(self._name, self.SIGNATURE_TYPE, self._raw)


class Verifier(Ed25519KeyVerifier):
    """Verifies Ed25519 (signature type 0x01) note signatures of one named key."""

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """From `<name>+<hex key ID>+<base64(0x01 || public key)>`."""
        return cls(*cls._parse_vkey(vkey, "Ed25519 (0x01)"))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


class Signer:
    """Signs note texts with Ed25519 (signature type 0x01) under one key name."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier = Verifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """From Go's `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>`."""
        private, _, rest = skey.partition("+")
        key_word, _, rest = rest.partition("+")
        name, _, rest = rest.partition("+")
        hex_id, _, key64 = rest.partition("+")
        material = _b64decode(key64)
        if (
            private != "PRIVATE"
            or key_word != "KEY"
            or not is_valid_key_name(name)
            or not _HEX_KEY_ID.fullmatch(hex_id)
            or material is None
            or len(material) != 1 + ED25519_KEY_SIZE
            or material[0] != SIGNATURE_TYPE_ED25519
        ):
            raise NoteError("malformed skey")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(material[1:]))
        if signer.key_id.hex() != hex_id:
            raise NoteError("skey: key ID does not match the name and key")
        return signer

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    @property
    def skey(self) -> str:
        """Go's private key encoding; keep it secret."""
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{material}"

    def verifier(self) -> Verifier:
        return self._verifier

    def sign(self, text: bytes) -> bytes:
        return self._private_key.sign(text)


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 4-byte key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line, newline included."""
        encoded = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures verified by known keys, and the others (ignored)."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The signed note: `text` (which must end in a newline), a blank line, one line per signer."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    return _with_signatures(_require_text(text), (), signers)


def add_signatures(message: str | bytes, *signers: NoteSigner) -> str:
    """Add signature lines to a signed note, keeping its other lines.

    An existing line with the same key name and key ID as one of the signers is replaced. The note
    is only parsed, not verified: a caller that vouches for it (a witness) verifies it first.
    """
    text, existing = parse_note(message)
    return _with_signatures(text, existing, signers)


def parse_note(message: str | bytes) -> tuple[str, tuple[Signature, ...]]:
    """Split a signed note into its text and its signature lines, checking syntax only.

    Nothing is verified: never act on the text of a note that was only parsed; use `open_note`.
    """
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not UTF-8") from None
    if _has_forbidden_characters(message):
        raise NoteError("malformed note: control characters other than newline, or not UTF-8")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("malformed note: no signature line, or the last one does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, tuple(_parse_signature_line(line) for line in lines)


def open_note(message: str | bytes, verifiers: Iterable[NoteVerifier]) -> Note:
    """Parse a signed note and verify its signatures against the known verifiers.

    Returns the note when at least one signature from a known key verifies and none from a known
    key fails. Raises NoteError (malformed), InvalidSignatureError or UnverifiedNoteError.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for candidate in verifiers:
        key = (candidate.name, candidate.key_id)
        if key in known and known[key] is not candidate:
            raise ValueError(f"two verifiers for the same key {candidate.name}+{candidate.key_id.hex()}")
        known[key] = candidate
    text, signatures = parse_note(message)
    encoded = text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            if signature not in unverified:
                unverified.append(signature)
            continue
        if not verifier.verify(encoded, signature.signature):
            raise InvalidSignatureError(signature.name, signature.key_id)
        if signature not in verified:
            verified.append(signature)
    note = Note(text, tuple(verified), tuple(unverified))
    if not verified:
        raise UnverifiedNoteError(note)
    return note


def _with_signatures(text: str, existing: Iterable[Signature], signers: Iterable[NoteSigner]) -> str:
    encoded = text.encode()
    added: list[Signature] = []
    for signer in signers:
        if not is_valid_key_name(signer.name) or len(signer.key_id) != KEY_ID_SIZE:
            raise ValueError(f"invalid signer {signer.name!r}")
        added.append(Signature(signer.name, signer.key_id, signer.sign(encoded)))
    replaced = {(s.name, s.key_id) for s in added}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    if len(kept) + len(added) > MAX_SIGNATURES:
        raise NoteError(f"a note holds at most {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(s.line for s in [*kept, *added])


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError(f"malformed note: not a signature line: {line!r}")
    name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    raw = _b64decode(encoded) if space else None
    if not is_valid_key_name(name) or raw is None or len(raw) <= KEY_ID_SIZE:
        raise NoteError(f"malformed note: bad signature line: {line!r}")
    return Signature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def _require_text(text: str) -> str:
    if not text.endswith("\n"):
        raise NoteError("malformed note: the text must end in a newline")
    if _has_forbidden_characters(text):
        raise NoteError("malformed note: control characters other than newline, or not UTF-8")
    return text


def _has_forbidden_characters(value: str) -> bool:
    """ASCII control characters other than newline, or a lone surrogate (no UTF-8 encoding)."""
    return any((c < " " and c != "\n") or "\ud800" <= c <= "\udfff" for c in value)


def _b64decode(value: str) -> bytes | None:
    """Strict RFC 4648 section 4 base64, padding required; None when it is not."""
    if not value:
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
