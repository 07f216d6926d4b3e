"""Two audit replicas on one real PostgreSQL store contend for the sequencer's lease (ADR 0022):
one appends at a time, a holder that lost the lease can append nothing more, and the tree the
new holder continues verifies whole against the checkpoints issued before and after the
takeover. Each replica has a store (an engine, a connection pool) of its own, as two processes
would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.facts import AuditFact
from services.audit.log.lease import LeaseLostError, Takeover
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.verification import verify_store
from shared.contracts.events import AuditCheckpoint
from shared.contracts.tlog.checkpoint import Checkpoint, open_checkpoint
from shared.contracts.tlog.note import Signer, Verifier
from tests.integration.conftest import sql_store
from tests.polling import eventually

ORIGIN = "safety-chain.test/audit-log"
LOG_KEY = Ed25519PrivateKey.generate()
LEASE = 10.0
BATCHES = 5000  # more than a holder appends before the takeover cuts it off


def fact(replica: str, offset: int) -> AuditFact:
    """A fact as `replica`'s intake would append it: its own topic tells who appended it."""
    return AuditFact(
        event_type="nl.safetychain.signal.accepted.v1",
        event_id=f"{replica}-{offset}",
        event_time=datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
        source="gm0363",
        correlation_id="a" * 32,
        kafka_topic=f"read-by-{replica}",
        kafka_partition=0,
        kafka_offset=offset,
    )


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlAuditStore, SqlAuditStore]]:
    """Two replicas' stores on one emptied PostgreSQL database."""
    first = sql_store(request, "postgresql", tmp_path)
    second = SqlAuditStore(request.getfixturevalue("postgres_url"))
    yield first, second
    first.engine.dispose()
    second.engine.dispose()


class Published:
    """The checkpoints as audit.checkpoints.v1 keeps them: outside the store."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    async def __call__(self, checkpoint: AuditCheckpoint) -> None:
        self.notes.append(checkpoint.note)

    def checkpoints(self) -> list[Checkpoint]:
        verifier = Verifier(ORIGIN, LOG_KEY.public_key())
        return [open_checkpoint(note, verifier).checkpoint for note in self.notes]


def issuer(store: SqlAuditStore, published: Published) -> CheckpointIssuer:
    return CheckpointIssuer(store, Signer(ORIGIN, LOG_KEY), published)


def test_a_standby_takes_over_a_paused_holder_whose_appends_are_then_refused_and_the_tree_goes_on(
    replicas: tuple[SqlAuditStore, SqlAuditStore],
) -> None:
    first, second = replicas
    published = Published()
    # the first replica takes the lease, appends and issues a checkpoint
    held = first.take_lease("audit-0", 1000.0, LEASE)
    assert held is not None and held.lease.epoch == 1 and not held.is_failover
    first.append_batch([fact("audit-0", n) for n in range(5)], epoch=1)
    asyncio.run(issuer(first, published).issue_if_due())
    # the second stands by while the lease lives
    assert second.take_lease("audit-1", 1009.0, LEASE) is None
    # the first pauses past its lease; the second takes it over where the log ends
    takeover = second.take_lease("audit-1", 1010.0, LEASE)
    assert takeover is not None and takeover.is_failover
    assert (takeover.lease.epoch, takeover.continued_from) == (2, 5)
    # the paused holder resumes: its append is refused, nothing of it kept
    with pytest.raises(LeaseLostError):
        first.append_batch([fact("audit-0", 5)], {("read-by-audit-0", 0): 6}, epoch=1)
    assert first.size() == 5 and ("read-by-audit-0", 0) not in second.consumed_offsets()
    assert first.renew_lease(held.lease, 1011.0, LEASE) is None
    # the new holder continues the same tree, and issues the next checkpoint over it
    stored = second.append_batch([fact("audit-1", n) for n in range(4)], epoch=2)
    assert [record.seq for record in stored if record] == [6, 7, 8, 9]
    asyncio.run(issuer(second, published).issue_if_due())
    # the whole log verifies across the takeover, against both checkpoints kept outside the store
    outside = published.checkpoints()
    assert [checkpoint.size for checkpoint in outside] == [5, 9]
    verified = verify_store(second, outside=outside, log_key=Verifier(ORIGIN, LOG_KEY.public_key()))
    assert verified.intact and verified.records_checked == 9, verified


def test_while_a_holder_appends_as_fast_as_it_can_a_takeover_cuts_it_off_at_one_exact_size(
    replicas: tuple[SqlAuditStore, SqlAuditStore],
) -> None:
    first, second = replicas
    assert first.take_lease("audit-0", 1000.0, LEASE) is not None
    refused = threading.Event()
    appended = 0

    def keep_appending() -> None:
        """The holder's intake, never renewing (as a paused one), until an append is refused."""
        nonlocal appended
        for batch in range(BATCHES):
            try:
                first.append_batch([fact("audit-0", batch * 5 + n) for n in range(5)], epoch=1)
            except LeaseLostError:
                refused.set()
                return
            appended += 5

    holder = threading.Thread(target=keep_appending)
    holder.start()
    try:
        # once it is well under way, the standby takes the expired lease, mid-stream
        eventually(lambda: appended >= 100, what="the holder appending")
        takeover: Takeover | None = second.take_lease("audit-1", 1010.0, LEASE)
    finally:
        holder.join()
    assert takeover is not None
    assert refused.is_set(), "the holder appended on after the takeover"
    second.append_batch([fact("audit-1", n) for n in range(3)], epoch=takeover.lease.epoch)
    # every record of the old epoch comes before the size the takeover read, every new one after
    by_holder = {record.seq: record.kafka_topic for record in second.records_in_sequence()}
    old = [seq for seq, topic in by_holder.items() if topic == "read-by-audit-0"]
    new = [seq for seq, topic in by_holder.items() if topic == "read-by-audit-1"]
    assert old == list(range(1, takeover.continued_from + 1)) and len(old) == appended
    assert new == [takeover.continued_from + n for n in (1, 2, 3)]
    assert verify_store(second).intact
