"""The checkpoints published on audit.checkpoints.v1 are read back a little at a time (real
broker): each verification reads only what was published since the last, and answers every
checkpoint believed so far (services/audit/log/outside.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.kafka import KafkaAccess
from services.audit.log import outside
from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.memory_store import InMemoryAuditStore
from services.audit.log.outside import PublishedCheckpoints
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.events import AuditCheckpoint
from shared.contracts.registry import Registry
from shared.contracts.tlog.note import Signer
from shared.plumbing.kafka import SignedPublisher
from tests.integration.test_audit_intake import audit_settings
from tests.integration.test_audit_store_contract import fact

pytestmark = pytest.mark.kafka


async def test_each_read_takes_only_what_was_published_since_and_answers_all_believed(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = audit_settings(kafka_access, kafka_prefix, tmp_path)
    keys = KeyRing(settings.keys_dir, generate_missing=False)
    signer = Signer(settings.audit_log_origin, keys.ed25519_private("audit"))
    publisher = SignedPublisher(
        settings, keys.ed25519_private("audit"), Registry.load(settings.config_dir, keys).source("audit")
    )
    await publisher.start()
    store = InMemoryAuditStore()

    async def publish(checkpoint: AuditCheckpoint) -> None:
        await publisher.publish("audit", checkpoint)

    issuer = CheckpointIssuer(store, signer, publish)
    read: list[int] = []  # the records each read looked at
    looked_at = outside.believed

    def counting(*args: object) -> object:
        read.append(1)
        return looked_at(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(outside, "believed", counting)
    published = PublishedCheckpoints(settings, keys.ed25519_public("audit"), signer.verifier())
    try:
        # three checkpoints published, all read
        for size in (1, 2, 3):
            store.append(fact(size))
            await issuer.issue(size)
        assert [c.size for c in await published()] == [1, 2, 3] and len(read) == 3
        # two more: the next read takes only those, and answers all five
        for size in (4, 5):
            store.append(fact(size))
            await issuer.issue(size)
        assert [c.size for c in await published()] == [1, 2, 3, 4, 5] and len(read) == 5
        # nothing new: nothing read
        assert len(await published()) == 5 and len(read) == 5
    finally:
        await publisher.stop()
