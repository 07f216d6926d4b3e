"""SQL plumbing the services' stores share: engines with safe SQLite settings.

A SQLite store holds wrapped data keys, the ledger or the audit log: its file is created 0600
in a folder created 0700 (and an existing file is narrowed to 0600). SQLite gives the -wal and
-shm files it creates later the permissions of the database file, so they are 0600 too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Final

from sqlalchemy import MetaData, create_engine, event, make_url, text
from sqlalchemy.engine import Engine

STORE_FILE_MODE = 0o600
STORE_DIR_MODE = 0o700


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")  # erased key material is overwritten, not left in free pages
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a URI filename: its owner chose its location and mode
    return Path(database)


def ensure_parent(url: str) -> str:
    """Create the folder (0700) and the file (0600) of a sqlite:/// store before SQLite opens
    it, and narrow an existing store file and its -wal/-shm to 0600; returns the URL unchanged."""
    path = sqlite_file(url)
    if path is None:
        return url
    if not path.parent.exists():
        # mkdir's mode applies to the last folder only; make each missing one 0700
        for folder in reversed([path.parent, *path.parent.parents]):
            if not folder.exists():
                folder.mkdir(mode=STORE_DIR_MODE, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, STORE_FILE_MODE))
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & 0o777 != STORE_FILE_MODE:
                file.chmod(STORE_FILE_MODE)
    return url


def create_store_engine(url: str) -> Engine:
    """An engine for a store: SQLite gets WAL, full sync and a busy timeout; its folder is made."""
    engine = create_engine(ensure_parent(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


SCHEMA_LOCK: Final = 0x5AFEC4A1
"""The PostgreSQL advisory lock a store's schema is created under."""


def create_schema(engine: Engine, metadata: MetaData) -> None:
    """Create the tables `metadata` names that do not exist yet, one process at a time:
    replicas that start together against one empty PostgreSQL database would otherwise both
    create a table, and the second would fail on it."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        metadata.create_all(connection)


def answers(engine: Engine) -> bool:
    """Does the database answer a trivial query? (readiness probes)"""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return True
    except Exception:
        return False
