from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.postgres import LocalPostgres


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
