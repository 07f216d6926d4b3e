"""Key material: read from a folder of files, generated there on first use in development.

Layout of `keys_dir` (production mounts it from Kubernetes Secrets, mode 0600 files):
  <owner>.x25519               32 raw bytes, X25519 private key (opens sealed payloads)
  <owner>.ed25519              32 raw bytes, Ed25519 private key seed (signs)
  <name>.secret                32 random bytes, a symmetric secret (e.g. pseudonymisation key)
  public/<owner>.x25519.pub    32 raw bytes, X25519 public key (development; production gives
  public/<owner>.ed25519.pub   public keys in organisations.yaml)

Private files and public files are read by different methods, and a public lookup never opens
a private file: one organisation's service needs another's public key, never its private key.
A service's ring is scoped (`KeyScope`, `SERVICE_KEYS`) to the private files of its own, so no
code path in it can read or generate another organisation's key, even in development.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

KEY_BYTES = 32
PUBLIC_DIR = "public"

Algorithm = Literal["ed25519", "x25519"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ed25519", "x25519")


class MissingKeyError(LookupError):
    """A key file is absent and may not be generated here."""


class KeyScopeError(PermissionError):
    """A ring was asked for private material outside its scope (another organisation's key)."""


@dataclass(frozen=True)
class KeyScope:
    """The private material one holder may read and, in development, generate: its own key
    pairs and named secrets. Its `files` are exactly what a deployment mounts for it."""

    owner: str
    key_pairs: frozenset[Algorithm] = frozenset()
    secrets: frozenset[str] = frozenset()

    @classmethod
    def organisation(cls, owner: str) -> KeyScope:
        """An organisation's own two key pairs (a partner's SDK, a municipality's publisher)."""
        return cls(owner, frozenset(ALGORITHMS))

    @property
    def files(self) -> frozenset[str]:
        return frozenset(
            {f"{self.owner}.{algorithm}" for algorithm in self.key_pairs}
            | {f"{name}.secret" for name in self.secrets}
        )


SERVICE_KEYS: Final[Mapping[str, KeyScope]] = MappingProxyType(
    {
        "signals": KeyScope(
            "signals", frozenset(ALGORITHMS), frozenset({"subject-pseudonyms", "key-encryption-key"})
        ),
        "consent": KeyScope("consent", frozenset(ALGORITHMS), frozenset({"partner-pseudonyms"})),
        # audit verifies everyone else's signatures (public keys) and signs its log (reads,
        # checkpoints): one signing key, nothing sealed to it. The subject-pseudonym key turns
        # the BSN a privacy officer enters into the subject's pseudonym, never kept.
        "audit": KeyScope("audit", frozenset({"ed25519"}), frozenset({"subject-pseudonyms"})),
    }
)
"""Per service, the private files its ring may read (deploy/k8s and docker-compose.yml mount
exactly these, tests/deploy checks it)."""


def _write_new(path: Path, material: bytes, mode: int) -> bool:
    """Create `path` with `material` unless it exists; False when another writer came first.

    Written aside, then linked into place: link() fails if the name exists, so when two
    processes race to create a file, one wins and both read its complete bytes."""
    draft = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material)
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def _read_exact(path: Path) -> bytes:
    material = path.read_bytes()
    if len(material) != KEY_BYTES:
        raise ValueError(f"{path} must hold exactly {KEY_BYTES} bytes")
    return material


def public_bytes(algorithm: Algorithm, private: bytes) -> bytes:
    """The raw public key of a raw private key."""
    key = (
        Ed25519PrivateKey.from_private_bytes(private).public_key()
        if algorithm == "ed25519"
        else X25519PrivateKey.from_private_bytes(private).public_key()
    )
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class KeyRing:
    """Key files of one folder. With a `scope`, private reads outside it raise KeyScopeError;
    without one (development tooling, tests) every private file of the folder is reachable."""

    def __init__(self, keys_dir: Path, *, generate_missing: bool, scope: KeyScope | None = None) -> None:
        self._dir = Path(keys_dir)
        self._generate_missing = generate_missing
        self._scope = scope

    @classmethod
    def for_service(cls, service: str, keys_dir: Path, *, generate_missing: bool) -> KeyRing:
        """The ring of one service: its own private files (SERVICE_KEYS) and public keys."""
        return cls(keys_dir, generate_missing=generate_missing, scope=SERVICE_KEYS[service])

    @property
    def keys_dir(self) -> Path:
        return self._dir

    def _material(self, filename: str) -> bytes:
        if self._scope is not None and filename not in self._scope.files:
            raise KeyScopeError(
                f"{filename} is not private material of {self._scope.owner!r}; its ring may read"
                f" only {sorted(self._scope.files)}"
            )
        path = self._dir / filename
        if path.exists():
            return _read_exact(path)
        if not self._generate_missing:
            raise MissingKeyError(f"{path} is missing")
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        material = secrets.token_bytes(KEY_BYTES)
        if not _write_new(path, material, 0o600):
            return _read_exact(path)
        return material

    def _private(self, owner: str, algorithm: Algorithm) -> bytes:
        material = self._material(f"{owner}.{algorithm}")
        if self._generate_missing:
            # Development keeps the public file beside its private key, so the other services
            # find it without opening (or inventing) this one.
            self._publish(owner, algorithm, public_bytes(algorithm, material))
        return material

    def _public_path(self, owner: str, algorithm: Algorithm) -> Path:
        return self._dir / PUBLIC_DIR / f"{owner}.{algorithm}.pub"

    def _publish(self, owner: str, algorithm: Algorithm, public: bytes) -> None:
        path = self._public_path(owner, algorithm)
        if path.exists():
            if path.read_bytes() != public:
                raise ValueError(f"{path} does not match the private key {owner}.{algorithm}")
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if not _write_new(path, public, 0o644) and path.read_bytes() != public:
            raise ValueError(f"{path} does not match the private key {owner}.{algorithm}")

    def _public(self, owner: str, algorithm: Algorithm) -> bytes:
        path = self._public_path(owner, algorithm)
        if not path.exists():
            raise MissingKeyError(
                f"no {algorithm} public key of {owner!r}: give it in organisations.yaml"
                f" ({algorithm}_public), or create {path} (development: python -m devstack.keys)"
            )
        return _read_exact(path)

    def x25519_private(self, owner: str) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._private(owner, "x25519"))

    def x25519_public(self, owner: str) -> X25519PublicKey:
        """From public/<owner>.x25519.pub only: never a private file."""
        return X25519PublicKey.from_public_bytes(self._public(owner, "x25519"))

    def ed25519_private(self, owner: str) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._private(owner, "ed25519"))

    def ed25519_public(self, owner: str) -> Ed25519PublicKey:
        """From public/<owner>.ed25519.pub only: never a private file."""
        return Ed25519PublicKey.from_public_bytes(self._public(owner, "ed25519"))

    def secret(self, name: str) -> bytes:
        return self._material(f"{name}.secret")


def generate_development_keys(
    keys_dir: Path, owners: Iterable[str], algorithms: Iterable[Algorithm] = ALGORITHMS
) -> None:
    """Development only: each owner's key pairs and their public files, made where missing.

    Idempotent (existing keys are kept; a public file missing beside an existing private key
    is written). Run before the services start, so each finds the others' public keys and
    none needs, or may, create another's private key."""
    ring = KeyRing(keys_dir, generate_missing=True)
    for owner in owners:
        for algorithm in algorithms:
            ring._private(owner, algorithm)
