"""SQL plumbing the services' stores share: engines with safe SQLite settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")  # erased key material is overwritten, not left in free pages
    cursor.close()


def ensure_parent(url: str) -> str:
    """Create the folder of a sqlite:/// file; returns the URL unchanged."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def create_store_engine(url: str) -> Engine:
    """An engine for a store: SQLite gets WAL, full sync and a busy timeout; its folder is made."""
    engine = create_engine(ensure_parent(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def answers(engine: Engine) -> bool:
    """Does the database answer a trivial query? (readiness probes)"""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return True
    except Exception:
        return False
