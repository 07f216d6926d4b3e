"""Rotating the key-encryption key (KEK) of the signals key store: `safety-chain keys rotate`.

Every subject's data key is stored wrapped by the KEK (`<keys_dir>/key-encryption-key.secret`).
A rotation makes a new KEK and rewraps every live data key with it, in one transaction; the data
keys do not change, so every payload stays readable, and an erased subject stays erased (its row
holds no key). Run it with signals stopped (signals reads the KEK at start).

Crash-safe in three steps, each of which can be repeated:
  1. the new KEK is written to `key-encryption-key.next.secret` (0600) unless it is there;
  2. every live key is rewrapped, from whichever of the current, next or given older KEKs
     opens it, to the next KEK, in one transaction;
  3. the current KEK is kept as `key-encryption-key.previous-<UTC time>.secret` and the next
     one takes its place (an atomic rename).
Interrupted anywhere, running it again finishes the same rotation; signals refuses to start
while a `.next` file is there (services/signals/app.py).

The previous KEK opens only backups taken before the rotation: keep it exactly as long as
those backups, then destroy it. Destroying it is what makes an erasure reach older backups
(docs/operations.md, "Key rotation").
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.signals.keystore import SqlKeyStore
from shared.contracts.crypto.datakeys import KEK_BYTES

KEK_NAME = "key-encryption-key"


def kek_file(keys_dir: Path, stage: str = "") -> Path:
    """The current KEK's file, or its `next` / `previous` one."""
    return keys_dir / (f"{KEK_NAME}.{stage}.secret" if stage else f"{KEK_NAME}.secret")


class RotationInterruptedError(RuntimeError):
    """A `.next` KEK exists: a rotation did not finish."""


def refuse_interrupted_rotation(keys_dir: Path) -> None:
    """Raise when a rotation was interrupted: some keys may be wrapped with the next KEK."""
    if kek_file(keys_dir, "next").exists():
        raise RotationInterruptedError(
            f"{kek_file(keys_dir, 'next')} exists: a KEK rotation was interrupted;"
            " run `safety-chain keys rotate` again to finish it before starting signals"
        )


@dataclass(frozen=True)
class Rotation:
    rewrapped: int
    resumed: bool
    previous_file: Path


def _write_secret(path: Path, material: bytes) -> None:
    """Write `material` to `path` (0600) durably: aside, flushed, then renamed into place."""
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(draft, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    material = path.read_bytes()
    if len(material) != KEK_BYTES:
        raise ValueError(f"{path} must hold exactly {KEK_BYTES} bytes")
    return material


def rotate_kek(keys_dir: Path, database_url: str, older: tuple[bytes, ...] = ()) -> Rotation:
    """Rotate the KEK in `keys_dir` for the key store at `database_url` (see the module).
    `older`: KEKs of rows not yet rewrapped (a restored backup from before a rotation)."""
    current_file, next_file = kek_file(keys_dir), kek_file(keys_dir, "next")
    current = _read(current_file)
    resumed = next_file.exists()
    if not resumed:
        _write_secret(next_file, secrets.token_bytes(KEK_BYTES))
    new = _read(next_file)
    store = SqlKeyStore(database_url, current, older_keks=(new, *older))
    try:
        rewrapped = store.rewrap_all(new)
    finally:
        store.engine.dispose()
    previous_file = kek_file(keys_dir, f"previous-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    _write_secret(previous_file, current)
    os.replace(next_file, current_file)
    _sync_folder(keys_dir)
    return Rotation(rewrapped, resumed, previous_file)
