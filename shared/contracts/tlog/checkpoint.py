"""C2SP checkpoints, witness cosignatures and offline proof files, on top of `note` and `merkle`.

Checkpoint (https://c2sp.org/tlog-checkpoint, v1.0.0): a signed note whose text is

    <origin>\\n                  non-empty; names the log
    <tree size>\\n               ASCII decimal, no leading zeroes ("0" for the empty tree)
    <base64 root hash>\\n        the RFC 6962/9162 root of the tree at that size, 32 bytes
    [<extension line>\\n ...]    optional, opaque, each non-empty (not recommended by the spec)

The log signs it with its note key (Ed25519 here, `note.Signer`); the spec says the key name SHOULD
be the origin, and `open_checkpoint` expects exactly that unless told another origin.

Cosignature (https://c2sp.org/tlog-cosignature, the Ed25519 "cosignature/v1" type): a witness's
signature line added to the log's checkpoint note, given only after the witness checked that the
checkpoint is consistent with the last one it accepted. Byte layout:
  key ID           SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]
  signed message   "cosignature/v1\\n" || "time <timestamp>\\n" || the checkpoint text (all of it,
                   extension lines included, final newline included)
  line payload     key ID || 8-byte big-endian timestamp || 64-byte Ed25519 signature
with <timestamp> the POSIX time in seconds as ASCII decimal, no leading zeroes, at most 2**63 - 1.
A cosigner's public key may be written as a vkey of signature type 0x04.

Proof file (https://c2sp.org/tlog-proof, `.tlog-proof`):

    c2sp.org/tlog-proof@v1\\n
    [extra <base64 opaque data>\\n]    optional, NOT authenticated
    index <leaf index>\\n              ASCII decimal, no leading zeroes
    [<base64 hash>\\n ...]             the RFC 9162 inclusion path, from the leaf's sibling up
    \\n
    <the signed checkpoint, verbatim, with its cosignatures>

Verifying one (`verify_proof_file`) needs only the leaf's bytes, the file and the keys: the leaf
hash is the RFC 9162 leaf hash of the given bytes; the checkpoint must carry a valid signature of
the log key for the expected origin; every cosignature from a known witness is verified (a failing
one refuses the file, as for any signed note) and counted against an optional quorum; the inclusion
path must lead from the leaf to the checkpoint's root at the given index. The cosignature timestamps
are returned, not judged.

Choices where the specs leave room:
- The tree size and index lines must be canonical (no sign, no leading zeroes, ASCII digits only)
  and the root and path hashes canonical base64 of exactly 32 bytes; anything else is malformed.
- An `extra` line must carry at least one byte: empty extra data is written as no extra line.
- A cosignature whose timestamp exceeds 2**63 - 1 does not verify. Timestamps in the future are
  not refused here (the spec says verifiers MAY); the caller sees them and may apply a policy.
- The witness keys are given as `CosignatureVerifier`s; a checkpoint's log signature must come
  from the given log key: a note signed only by witnesses does not open as a checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.tlog import merkle
from shared.contracts.tlog.note import (
    ED25519_SIGNATURE_SIZE,
    Ed25519KeyVerifier,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    sign_note,
)

SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
PROOF_FILE_EXTENSION = ".tlog-proof"

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_TIMESTAMP_SIZE = 8


class CheckpointError(ValueError):
    """A checkpoint or proof file is malformed or does not verify; the message says why."""


def _require_line(what: str, value: str) -> None:
    if not value or any(c < " " or "\ud800" <= c <= "\udfff" for c in value):
        raise CheckpointError(f"{what} must be a non-empty line without control characters, got {value!r}")


def _decimal(what: str, value: str) -> int:
    if not _DECIMAL.fullmatch(value):
        raise CheckpointError(f"{what} must be ASCII decimal without leading zeroes, got {value!r}")
    return int(value)


def _hash(what: str, value: str) -> bytes:
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not base64: {value!r}") from None
    if len(decoded) != merkle.HASH_SIZE or base64.b64encode(decoded).decode() != value:
        raise CheckpointError(f"{what} must be the base64 of {merkle.HASH_SIZE} bytes, got {value!r}")
    return decoded


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_line("origin", self.origin)
        if self.size < 0:
            raise CheckpointError(f"tree size must not be negative, got {self.size}")
        if len(self.root_hash) != merkle.HASH_SIZE:
            raise CheckpointError(f"root hash must be {merkle.HASH_SIZE} bytes, got {len(self.root_hash)}")
        for line in self.extensions:
            _require_line("extension line", line)

    def to_body(self) -> str:
        """The note text: origin, size, base64 root hash and extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """The checkpoint of a note text; refuses anything `to_body` would not have written."""
        if not body.endswith("\n"):
            raise CheckpointError("checkpoint text must end in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"checkpoint text has {len(lines)} lines, at least 3 are required")
        origin, size, root_hash, *extensions = lines
        _require_line("origin", origin)
        for line in extensions:
            _require_line("extension line", line)
        return cls(origin, _decimal("tree size", size), _hash("root hash", root_hash), tuple(extensions))


def cosignature_message(timestamp: int, checkpoint_text: str) -> bytes:
    """The bytes a cosignature/v1 signs: header line, time line, then the whole checkpoint text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp must be in 0..2**63-1, got {timestamp}")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def cosignature_timestamp(signature: bytes) -> int:
    """The timestamp of a cosignature/v1 payload (the bytes after the key ID); not a verification."""
    if len(signature) != _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
        raise CheckpointError(
            f"a cosignature is {_TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE} bytes after the key ID, "
            f"got {len(signature)}"
        )
    return int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")


class CosignatureVerifier(Ed25519KeyVerifier):
    """Verifies a witness's cosignature/v1 lines (signature type 0x04) on checkpoints."""

    SIGNATURE_TYPE = SIGNATURE_TYPE_COSIGNATURE_V1

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """From `<name>+<hex key ID>+<base64(0x04 || public key)>`."""
        return cls(*cls._parse_vkey(vkey, "cosignature/v1"))

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            timestamp = cosignature_timestamp(signature)
            message = cosignature_message(timestamp, text.decode())
        except (CheckpointError, UnicodeDecodeError):
            return False
        try:
            self._public_key.verify(signature[_TIMESTAMP_SIZE:], message)
        except InvalidSignature:
            return False
        return True


class Cosigner:
    """A witness's cosignature/v1 signer; add its line with `note.add_signatures(checkpoint, cosigner)`.

    Cosign only a checkpoint whose log signature you verified and which you found consistent with
    the last checkpoint you accepted for its origin: that is what the cosignature states.
    """

    def __init__(
        self, name: str, private_key: Ed25519PrivateKey, clock: Callable[[], float] = time.time
    ) -> None:
        self._private_key = private_key
        self._clock = clock
        self._verifier = CosignatureVerifier(name, private_key.public_key())

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    def verifier(self) -> CosignatureVerifier:
        return self._verifier

    def sign(self, text: bytes) -> bytes:
        timestamp = int(self._clock())
        message = cosignature_message(timestamp, text.decode())
        return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + self._private_key.sign(message)


@dataclass(frozen=True)
class Cosignature:
    """A verified witness cosignature: who, and the time the witness stated."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature verified, with the cosignatures of known witnesses."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]

    @property
    def witnesses(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cosignatures)


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a note signed by the log."""
    return sign_note(checkpoint.to_body(), signer)


def open_checkpoint(
    signed: str | bytes,
    log_verifier: NoteVerifier,
    witness_verifiers: Iterable[CosignatureVerifier] = (),
    *,
    origin: str | None = None,
) -> VerifiedCheckpoint:
    """Verify a signed checkpoint: the log's signature, the origin, and known witnesses' cosignatures.

    `origin` defaults to the log key's name (the spec's SHOULD). Raises NoteError (malformed note,
    bad signature, no known signature) or CheckpointError (malformed checkpoint, not signed by the
    log, another origin).
    """
    witnesses = list(witness_verifiers)
    note = open_note(signed, [log_verifier, *witnesses])
    if not any((s.name, s.key_id) == (log_verifier.name, log_verifier.key_id) for s in note.verified):
        raise CheckpointError(f"checkpoint is not signed by the log key {log_verifier.name}")
    checkpoint = Checkpoint.parse(note.text)
    expected = log_verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}")
    witness_keys = {(w.name, w.key_id) for w in witnesses}
    cosignatures = tuple(
        Cosignature(s.name, s.key_id, cosignature_timestamp(s.signature))
        for s in note.verified
        if (s.name, s.key_id) in witness_keys
    )
    return VerifiedCheckpoint(checkpoint, cosignatures)


@dataclass(frozen=True)
class ProofFile:
    """A parsed, not yet verified, tlog-proof file."""

    index: int
    inclusion_path: tuple[bytes, ...]
    signed_checkpoint: str
    extra: bytes | None = None


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified proof file establishes: leaf `index` is in the log's tree of `size` leaves."""

    index: int
    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]
    extra: bytes | None
    """Unauthenticated: never trust it because the proof verified."""

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def witnesses(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cosignatures)


def build_proof_file(
    index: int, inclusion_path: Sequence[bytes], signed_checkpoint: str, extra: bytes | None = None
) -> str:
    """The tlog-proof text for leaf `index`, its inclusion path and the signed checkpoint (verbatim)."""
    if index < 0:
        raise CheckpointError(f"leaf index must not be negative, got {index}")
    for position, value in enumerate(inclusion_path):
        if len(value) != merkle.HASH_SIZE:
            raise CheckpointError(f"inclusion path hash {position} must be {merkle.HASH_SIZE} bytes")
    if extra is not None and not extra:
        raise CheckpointError("extra data must not be empty; leave it out instead")
    parse_note(signed_checkpoint)  # refuse to wrap something that is not a signed note
    lines = [PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(value).decode() for value in inclusion_path)
    return "".join(line + "\n" for line in lines) + "\n" + signed_checkpoint


def parse_proof_file(text: str | bytes) -> ProofFile:
    """Split a tlog-proof file into its parts, checking syntax only."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("proof file is not UTF-8") from None
    head, separator, signed_checkpoint = text.partition("\n\n")
    if not separator or not signed_checkpoint:
        raise CheckpointError("proof file has no blank line followed by a checkpoint")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise CheckpointError(f"proof file must start with {PROOF_HEADER!r}")
    position = 1
    extra = None
    if position < len(lines) and lines[position].startswith("extra "):
        try:
            extra = base64.b64decode(lines[position][len("extra ") :].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise CheckpointError("proof file extra data is not base64") from None
        if not extra:
            raise CheckpointError("proof file extra line carries no data")
        position += 1
    if position >= len(lines) or not lines[position].startswith("index "):
        raise CheckpointError("proof file has no index line")
    index = _decimal("leaf index", lines[position][len("index ") :])
    path = tuple(_hash(f"inclusion path hash {i}", line) for i, line in enumerate(lines[position + 1 :]))
    return ProofFile(index, path, signed_checkpoint, extra)


def verify_proof_file(
    text: str | bytes,
    leaf_bytes: bytes,
    log_verifier: NoteVerifier,
    witness_verifiers: Iterable[CosignatureVerifier] = (),
    *,
    origin: str | None = None,
    quorum: int = 0,
) -> VerifiedProof:
    """Verify a tlog-proof file for the leaf with these bytes, offline, as c2sp.org/tlog-proof says.

    `quorum` is the number of known witnesses whose cosignature is required. Raises NoteError,
    CheckpointError or merkle.ProofError (all ValueErrors) when the file does not prove the leaf.
    """
    proof = parse_proof_file(text)
    # Step 1: the leaf hash.
    leaf_hash = merkle.leaf_hash(leaf_bytes)
    # Steps 2 and 3: the origin, the log's signature and the witnesses' cosignatures.
    verified = open_checkpoint(proof.signed_checkpoint, log_verifier, witness_verifiers, origin=origin)
    if len(verified.cosignatures) < quorum:
        raise CheckpointError(
            f"{len(verified.cosignatures)} known witnesses cosigned the checkpoint, {quorum} are required"
        )
    # Step 4: the inclusion proof binds the leaf to the signed root.
    checkpoint = verified.checkpoint
    merkle.verify_inclusion(
        leaf_hash, proof.index, checkpoint.size, proof.inclusion_path, checkpoint.root_hash
    )
    return VerifiedProof(proof.index, checkpoint, verified.cosignatures, proof.extra)
