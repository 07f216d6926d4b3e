"""Fixtures the unit tests share: one development key ceremony per session, a fresh intake
pipeline harness (its own SQLite stores) per test, and the AsyncAPI document, built once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.plumbing.asyncapi import asyncapi_document
from tests.unit.intake_harness import Harness, Parties


@pytest.fixture(scope="session")
def parties(tmp_path_factory: pytest.TempPathFactory, project_config_dir: Path) -> Parties:
    return Parties.made_in(tmp_path_factory.mktemp("ceremony") / "keys", project_config_dir)


@pytest.fixture
def harness(tmp_path: Path, parties: Parties) -> Harness:
    return Harness(tmp_path, parties)


@pytest.fixture(scope="session")
def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document as the generator builds it (a tenth of a second each time); the tests
    read it and change nothing in it. That a second build is the same is a test of its own."""
    return asyncapi_document()
