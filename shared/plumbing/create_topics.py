"""`python -m shared.plumbing.create_topics`: create every topic idempotently, then exit.

For anyone pointing safety-chain at an existing cluster whose users and ACLs are managed
elsewhere (`make run` with KAFKA_BOOTSTRAP_SERVERS set uses it; the local broker and compose are
provisioned whole by devstack/provision.py). Partner topics follow from the organisation
registry. Connect as a principal allowed to create topics.
"""

from __future__ import annotations

import asyncio

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.contracts.topics import all_topics
from shared.plumbing.kafka import ensure_topics
from shared.plumbing.logging import configure_logging
from shared.plumbing.settings import CommonSettings


async def create_all(settings: CommonSettings, replication_factor: int = 1) -> list[str]:
    registry = Registry.load(settings.config_dir, KeyRing(settings.keys_dir, generate_missing=False))
    return await ensure_topics(settings, all_topics(registry.partner_ids), replication_factor)


def main() -> None:
    settings = CommonSettings()
    configure_logging("topics", settings.log_format, settings.log_level)
    asyncio.run(create_all(settings))


if __name__ == "__main__":
    main()
