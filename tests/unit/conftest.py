"""Fixtures the unit tests share: one development key ceremony per session, and a fresh intake
pipeline harness (its own SQLite stores) per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.intake_harness import Harness, Parties


@pytest.fixture(scope="session")
def parties(tmp_path_factory: pytest.TempPathFactory, project_config_dir: Path) -> Parties:
    return Parties.made_in(tmp_path_factory.mktemp("ceremony") / "keys", project_config_dir)


@pytest.fixture
def harness(tmp_path: Path, parties: Parties) -> Harness:
    return Harness(tmp_path, parties)
