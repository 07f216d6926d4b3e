"""Key material: read from a folder of files, generated there on first use in development.

Layout of `keys_dir` (production mounts it from Kubernetes Secrets, mode 0600 files):
  <owner>.x25519     32 raw bytes, X25519 private key (opens sealed payloads)
  <owner>.ed25519    32 raw bytes, Ed25519 private key seed (signs)
  <name>.secret      32 random bytes, a symmetric secret (e.g. pseudonymisation key)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

KEY_BYTES = 32


class MissingKeyError(LookupError):
    """A key file is absent and may not be generated here."""


class KeyRing:
    def __init__(self, keys_dir: Path, *, generate_missing: bool) -> None:
        self._dir = Path(keys_dir)
        self._generate_missing = generate_missing

    def _material(self, filename: str) -> bytes:
        path = self._dir / filename
        if path.exists():
            material = path.read_bytes()
            if len(material) != KEY_BYTES:
                raise ValueError(f"{path} must hold exactly {KEY_BYTES} bytes")
            return material
        if not self._generate_missing:
            raise MissingKeyError(f"{path} is missing")
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        material = secrets.token_bytes(KEY_BYTES)
        # Written aside, then linked into place: link() fails if the name exists, so when two
        # processes race to create a key, one wins and both read its complete bytes.
        draft = self._dir / f".{filename}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(material)
        try:
            os.link(draft, path)
        except FileExistsError:
            return self._material(filename)
        finally:
            draft.unlink()
        return material

    def x25519_private(self, owner: str) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._material(f"{owner}.x25519"))

    def x25519_public(self, owner: str) -> X25519PublicKey:
        return self.x25519_private(owner).public_key()

    def ed25519_private(self, owner: str) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._material(f"{owner}.ed25519"))

    def secret(self, name: str) -> bytes:
        return self._material(f"{name}.secret")
