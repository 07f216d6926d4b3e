"""Online backups of the stores and their restore: `safety-chain backup create|restore`.

Two stores hold what cannot be rebuilt from Kafka: signals' database (the key store, whose
wrapped data keys open every accepted payload, and the ledger) and the audit log. A backup is
consistent per store while the services keep writing: SQLite through its online backup API (a
snapshot of one transaction), PostgreSQL through `pg_dump` (one repeatable-read snapshot). Each
backup folder holds one file per store and `manifest.json` (when, which store, size, SHA-256).

A backup of the key store holds wrapped keys, never the KEK: keep the KEK (and each previous
one, after a rotation) apart from the backups. An erasure reaches a backup when the KEK that
wraps its keys is destroyed (docs/operations.md).
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url

from shared.plumbing.sql import STORE_DIR_MODE, STORE_FILE_MODE, sqlite_file

MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    """A backup or restore could not be made; nothing partial is left as if it were whole."""


@dataclass(frozen=True)
class StoreBackup:
    name: str  # "signals" or "audit"
    kind: str  # "sqlite" or "postgresql"
    file: str  # inside the backup folder
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    created_at: str
    stores: list[StoreBackup]

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        document = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return cls(document["created_at"], [StoreBackup(**store) for store in document["stores"]])


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools)")
    return found


def _libpq_url(url: str) -> str:
    """postgresql+psycopg://... as libpq (pg_dump, pg_restore) reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _private_file(path: Path) -> None:
    path.touch(mode=STORE_FILE_MODE, exist_ok=False)
    path.chmod(STORE_FILE_MODE)


def backup_store(name: str, url: str, folder: Path) -> StoreBackup:
    """One store into `folder`, consistent as of one moment, while it is in use."""
    database = sqlite_file(url)
    if database is not None:
        target = folder / f"{name}.sqlite"
        _private_file(target)
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # SQLite's online backup: restarts if a writer changes a page
        finally:
            copy.close()
            source.close()
        kind = "sqlite"
    elif make_url(url).get_backend_name() == "postgresql":
        target = folder / f"{name}.pgdump"
        _private_file(target)
        done = subprocess.run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", _libpq_url(url)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            target.unlink(missing_ok=True)
            raise BackupError(f"pg_dump of {name} failed: {done.stderr.strip()[:500]}")
        kind = "postgresql"
    else:
        raise BackupError(f"{name}: no backup for {make_url(url).get_backend_name()} stores")
    return StoreBackup(name, kind, target.name, _sha256(target), target.stat().st_size)


def create_backup(stores: dict[str, str], folder: Path) -> Manifest:
    """Back up every store (name -> SQLAlchemy URL) into the new folder `folder` (0700)."""
    folder.mkdir(mode=STORE_DIR_MODE, parents=True, exist_ok=False)
    backups = [backup_store(name, url, folder) for name, url in stores.items()]
    manifest = Manifest(datetime.now(UTC).isoformat(), backups)
    document = {"created_at": manifest.created_at, "stores": [asdict(store) for store in backups]}
    (folder / MANIFEST).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return manifest


def restore_store(folder: Path, store: StoreBackup, url: str) -> None:
    """Restore one store's backup into `url`, which must be empty (a new SQLite file, or an
    empty PostgreSQL database). The backup's checksum is checked first."""
    source = folder / store.file
    if _sha256(source) != store.sha256:
        raise BackupError(f"{source} does not match its checksum in the manifest")
    database = sqlite_file(url)
    if store.kind == "sqlite":
        if database is None:
            raise BackupError(f"{store.name}: a SQLite backup restores into a sqlite:/// URL")
        if database.exists():
            raise BackupError(f"{database} exists: restore into a new file")
        database.parent.mkdir(mode=STORE_DIR_MODE, parents=True, exist_ok=True)
        _private_file(database)
        backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        target = sqlite3.connect(database)
        try:
            backup.backup(target)
        finally:
            target.close()
            backup.close()
        return
    done = subprocess.run(
        [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_libpq_url(url)}", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore of {store.name} failed: {done.stderr.strip()[:500]}")


def restore_backup(folder: Path, stores: dict[str, str]) -> Manifest:
    """Restore every store of the backup in `folder` into the URLs given by name."""
    manifest = Manifest.load(folder)
    missing = {store.name for store in manifest.stores} - set(stores)
    if missing:
        raise BackupError(f"no target given for {sorted(missing)}")
    for store in manifest.stores:
        restore_store(folder, store, stores[store.name])
    return manifest
