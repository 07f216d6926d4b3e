"""Two audit replicas on one real PostgreSQL store contend for the sequencer's lease (ADR 0022):
one appends at a time, a holder that lost the lease can append nothing more, and the tree the
new holder continues verifies whole against the checkpoints issued before and after the
takeover. Each replica has a store (an engine, a connection pool) of its own, as two processes
would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from devstack.kafka import PROJECT_ROOT, KafkaAccess
from devstack.keys import prepare_development_keys
from services.audit.app import create_app
from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.facts import AuditFact
from services.audit.log.lease import LeaseLostError, Takeover
from services.audit.log.record import AuditRecord
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.store import StoredCheckpoint
from services.audit.log.verification import verify_store
from services.audit.settings import AuditSettings
from shared.contracts.events import AuditCheckpoint, AuditFailover
from shared.contracts.tlog.checkpoint import Checkpoint, open_checkpoint
from shared.contracts.tlog.note import Signer, Verifier
from tests.integration.conftest import sql_store
from tests.integration.test_audit_intake import logged_reads, write_reads
from tests.polling import eventually, eventually_async

ORIGIN = "safety-chain.test/audit-log"
LOG_KEY = Ed25519PrivateKey.generate()
LEASE = 10.0
EMPTY = StoredCheckpoint(0, b"", "", "")
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


# --- Two audit services, a leader and a standby, on the real broker ------------------------------


def replica_settings(
    kafka: KafkaAccess, prefix: str, folder: Path, database_url: str, instance: str
) -> AuditSettings:
    keys = folder / "keys"
    prepare_development_keys(keys, PROJECT_ROOT / "config")
    settings = AuditSettings(
        **kafka.settings("audit"),
        topic_prefix=prefix,
        keys_dir=keys,
        audit_database_url=database_url,
        audit_lease_seconds=3.0,
        checkpoint_interval_seconds=0.5,
    )
    return settings.model_copy(update={"instance_id_setting": instance})  # as SC_INSTANCE_ID sets it


def failovers_in(store: SqlAuditStore) -> list[AuditRecord]:
    return [r for r in store.records_in_sequence() if r.event_type == AuditFailover.event_type]


async def checks_of(app: FastAPI, path: str) -> dict[str, bool]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://audit") as client:
        answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    checks: dict[str, bool] = answer.json()["checks"]
    return checks


@pytest.mark.kafka
async def test_a_standby_serves_until_the_leader_stops_then_logs_the_failover_and_continues_the_log(
    request: pytest.FixtureRequest, kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    database = sql_store(request, "postgresql", tmp_path)  # emptied; read by the test
    url = request.getfixturevalue("postgres_url")
    first = create_app(replica_settings(kafka_access, kafka_prefix, tmp_path, url, "audit-0"))
    second = create_app(replica_settings(kafka_access, kafka_prefix, tmp_path, url, "audit-1"))
    settings = replica_settings(kafka_access, kafka_prefix, tmp_path, url, "test")
    async with AsyncExitStack() as standby:
        leading = first.router.lifespan_context(first)
        await leading.__aenter__()
        try:
            await standby.enter_async_context(second.router.lifespan_context(second))
            # both are ready and alive; only the first consumes
            assert (await checks_of(first, "/readyz")).get("intake") is True
            assert await checks_of(second, "/readyz") == {"store": True, "sequencer": True, "standby": True}
            assert await checks_of(second, "/healthz") == {"sequencer": True}
            await write_reads(kafka_access, settings, 30)
            await logged_reads(database, settings, 30)
        finally:
            await leading.__aexit__(None, None, None)  # a clean stop lets the lease go
        # the standby takes over, logs the failover first, and goes on where the log ended
        (failover,) = await eventually_async(
            lambda: asyncio.to_thread(failovers_in, database), what="the failover in the log", timeout=60
        )
        assert failover.source == "audit" and failover.decision == "failover"
        assert failover.reasons[:3] == ("from audit-0", "to audit-1", "epoch 2")
        continued_from = int(failover.reasons[3].split()[2])
        assert failover.seq > continued_from >= 30
        assert (await checks_of(second, "/readyz")).get("intake") is True
        await write_reads(kafka_access, settings, 30)
        logged = await logged_reads(database, settings, 60)
        assert max(logged.values()) == 1  # nothing read twice across the takeover
        # the log verifies across the failover, against the checkpoints the two issued outside it
        size = database.size()
        await eventually_async(
            lambda: asyncio.to_thread(lambda: (database.latest_checkpoint() or EMPTY).size >= size),
            what="a checkpoint over the whole log",
        )
        verified = await second.state.verifier.verify("test")
        assert verified.result.intact, verified.result
    database.engine.dispose()
