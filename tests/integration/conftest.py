from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.audit.log.memory_store import InMemoryAuditStore
from services.audit.log.sql_store import SqlAuditStore, metadata
from services.audit.log.store import AuditStore


def sql_store(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> SqlAuditStore:
    if backend == "sqlite":
        return SqlAuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    store = SqlAuditStore(request.getfixturevalue("postgres_url"))
    with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    return store


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "memory":
        yield InMemoryAuditStore()
        return
    store = sql_store(request, request.param, tmp_path)
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAuditStore]:
    """A store someone can change behind the log's back."""
    store = sql_store(request, request.param, tmp_path)
    yield store
    store.engine.dispose()
