"""Test tiers: unit/ (no I/O, seconds), integration/ (real Kafka, real databases), e2e/ (the
three services as processes on the real broker).

One real Apache Kafka broker serves the whole session; each test or module isolates itself
with a fresh topic prefix. Set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.kafka import LocalKafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topic_prefix() -> str:
    return fresh_prefix()


@pytest.fixture(scope="session")
def project_config_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "config"
