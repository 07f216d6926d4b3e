from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.postgres import LocalPostgres
from services.audit.log.memory_store import InMemoryAuditStore
from services.audit.log.sql_store import SqlAuditStore, metadata
from services.audit.log.store import AuditStore


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: SC_TEST_POSTGRES_URL if set, else a throwaway local server."""
    existing = os.environ.get("SC_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    server = LocalPostgres(tmp_path_factory.mktemp("postgres"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


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
