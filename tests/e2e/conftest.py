from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.kafka import KafkaAccess
from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="module")
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running system per test module, on its own topic prefix."""
    with Stack(kafka_access, fresh_prefix(), tmp_path_factory.mktemp("stack")) as running:
        yield running
