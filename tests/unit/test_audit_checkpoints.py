"""The audit log issues signed C2SP checkpoints: when due, once per size, published before kept."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.facts import AuditFact
from services.audit.log.memory_store import InMemoryAuditStore
from shared.contracts.events import AuditCheckpoint
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import open_checkpoint
from shared.contracts.tlog.note import NoteError, Signer, Verifier

ORIGIN = "safety-chain.test/audit-log"
KEY = Ed25519PrivateKey.generate()


def fact(offset: int) -> AuditFact:
    return AuditFact(
        event_type="nl.safetychain.signal.accepted.v1",
        event_id=f"e-{offset}",
        event_time=datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
        source="gm0363",
        correlation_id="a" * 32,
        kafka_topic="signals.accepted.v1",
        kafka_partition=0,
        kafka_offset=offset,
    )


class Clock:
    """Seconds, as time.monotonic() or time.time() give them, set by the test."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issuer_with(
    store: InMemoryAuditStore, published: list[AuditCheckpoint], clock: Clock, every_records: int = 3
) -> CheckpointIssuer:
    async def publish(checkpoint: AuditCheckpoint) -> None:
        published.append(checkpoint)

    return CheckpointIssuer(
        store, Signer(ORIGIN, KEY), publish, every_records=every_records, every_seconds=10.0, clock=clock
    )


def test_a_checkpoint_is_a_note_the_log_key_signs_over_the_root_of_the_records() -> None:
    store, published = InMemoryAuditStore(), list[AuditCheckpoint]()
    store.append_batch([fact(offset) for offset in range(5)])
    stored = asyncio.run(issuer_with(store, published, Clock()).issue(5))
    opened = open_checkpoint(stored.note, Verifier(ORIGIN, KEY.public_key()))
    assert opened.checkpoint.origin == ORIGIN and opened.checkpoint.size == 5
    assert opened.checkpoint.root_hash == merkle.root(5, store) == stored.root_hash
    (event,) = published
    assert event.note == stored.note and base64.b64decode(event.root_hash) == stored.root_hash
    assert store.checkpoints() == [stored]
    with pytest.raises(NoteError):  # another key does not open it
        open_checkpoint(stored.note, Verifier(ORIGIN, Ed25519PrivateKey.generate().public_key()))


def test_one_is_due_after_n_records_or_t_seconds_with_new_records_and_never_twice_for_a_size() -> None:
    store, published, clock = InMemoryAuditStore(), list[AuditCheckpoint](), Clock()
    issuer = issuer_with(store, published, clock)
    clock.now += 60
    assert asyncio.run(issuer.issue_if_due()) is None  # an empty log: nothing to commit to
    store.append_batch([fact(0), fact(1), fact(2)])
    assert asyncio.run(issuer.issue_if_due()) is not None  # three records
    store.append(fact(3))
    assert asyncio.run(issuer.issue_if_due()) is None  # one record, no time passed
    clock.now += 9
    assert asyncio.run(issuer.issue_if_due()) is None
    clock.now += 1
    assert asyncio.run(issuer.issue_if_due()) is not None  # ten seconds with a new record
    clock.now += 60
    assert asyncio.run(issuer.issue_if_due()) is None  # nothing new: no checkpoint for the same size
    assert [c.size for c in store.checkpoints()] == [3, 4] and [c.size for c in published] == [3, 4]


def test_a_checkpoint_that_could_not_be_published_is_not_kept() -> None:
    store = InMemoryAuditStore()
    store.append(fact(0))

    async def unreachable(checkpoint: AuditCheckpoint) -> None:
        raise ConnectionError("the cluster is down")

    issuer = CheckpointIssuer(store, Signer(ORIGIN, KEY), unreachable, every_records=1)
    with pytest.raises(ConnectionError):
        asyncio.run(issuer.issue_if_due())
    assert store.checkpoints() == []


def test_by_default_one_is_due_every_interval_when_the_log_grew_however_fast_it_grows() -> None:
    store, published, clock = InMemoryAuditStore(), list[AuditCheckpoint](), Clock()

    async def publish(checkpoint: AuditCheckpoint) -> None:
        published.append(checkpoint)

    issuer = CheckpointIssuer(store, Signer(ORIGIN, KEY), publish, every_seconds=5.0, clock=clock)
    store.append_batch([fact(offset) for offset in range(500)])
    assert asyncio.run(issuer.issue_if_due()) is not None  # the first at once
    store.append_batch([fact(offset) for offset in range(500, 2000)])  # thousands within the interval
    clock.now += 4.9
    assert asyncio.run(issuer.issue_if_due()) is None
    clock.now += 0.1
    assert asyncio.run(issuer.issue_if_due()) is not None
    clock.now += 60
    assert asyncio.run(issuer.issue_if_due()) is None  # nothing new
    assert [c.size for c in published] == [500, 2000]
