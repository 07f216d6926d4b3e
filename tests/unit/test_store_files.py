"""Local store files are the user's alone: SQLite files 0600 (-wal and -shm included), their
folders 0700, whatever the process umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.audit.log.sql_store import SqlAuditStore
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from shared.plumbing.sql import create_store_engine, ensure_parent, sqlite_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022: the modes must not depend on a strict umask."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_store_file_its_wal_and_shm_are_0600_in_folders_made_0700(tmp_path: Path) -> None:
    database = tmp_path / "local" / "nested" / "store.db"
    engine = create_store_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as connection:  # WAL mode: -wal and -shm exist while a connection is open
        connection.execute(text("SELECT x FROM t")).all()
        files = [database, database.with_name("store.db-wal"), database.with_name("store.db-shm")]
        assert all(file.exists() for file in files)
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
    assert mode(database.parent) == 0o700
    assert mode(database.parent.parent) == 0o700
    engine.dispose()


def test_an_existing_store_file_is_narrowed_to_0600(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    database.touch(mode=0o644)
    wal = tmp_path / "old.db-wal"
    wal.touch(mode=0o644)
    ensure_parent(f"sqlite:///{database}")
    assert mode(database) == mode(wal) == 0o600


def test_an_existing_folder_is_left_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_parent(f"sqlite:///{tmp_path / 'store.db'}")
    assert mode(tmp_path) == 0o755  # e.g. a mounted volume: not ours to change
    assert mode(tmp_path / "store.db") == 0o600


def test_the_signals_and_audit_stores_are_0600(tmp_path: Path) -> None:
    signals = tmp_path / "signals" / "signals.db"
    SqlKeyStore(f"sqlite:///{signals}", bytes(32))
    SqlSignalLedger(f"sqlite:///{signals}")
    audit = tmp_path / "audit" / "audit.db"
    SqlAuditStore(f"sqlite:///{audit}")
    for database in (signals, audit):
        assert mode(database) == 0o600
        assert mode(database.parent) == 0o700
        for sidecar in database.parent.glob(f"{database.name}-*"):
            assert mode(sidecar) == 0o600, sidecar.name


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///relative/x.db", Path("relative/x.db")),
        ("sqlite:////absolute/x.db", Path("/absolute/x.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://user@host/db", None),
    ],
)
def test_only_sqlite_files_are_touched(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected
