"""The audit intake on the real broker: what a poll returns is appended in one store transaction
with the offsets it was consumed up to, and the intake resumes where the store ends, so a process
killed between the store's commit and Kafka's logs every fact exactly once; a fact the store keeps
refusing is kept as unstorable and the rest flow on; a store that is down counts against no record
(services/audit/log/ingest.py).

The records are AuditRead facts on audit.reads.v1, written with the audit service's own principal
and key (the only writer the ACLs and the signature check allow there): genuine facts, quick to make.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from devstack.kafka import ADMIN_PRINCIPAL, PROJECT_ROOT, KafkaAccess
from devstack.keys import prepare_development_keys
from services.audit.log import ingest
from services.audit.log.facts import AuditFact
from services.audit.log.ingest import UNSTORABLE, AuditIntake, registry_signature_check, registry_sources
from services.audit.log.record import AuditRecord
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.store import Consumed
from services.audit.log.verification import verify_store
from services.audit.settings import AuditSettings
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.kafka import topic_partitions
from tests.audit_reads import produce_audit_reads
from tests.polling import eventually_async

pytestmark = pytest.mark.kafka

READS = "audit.reads.v1"


def audit_settings(kafka: KafkaAccess, prefix: str, folder: Path) -> AuditSettings:
    keys = folder / "keys"
    prepare_development_keys(keys, PROJECT_ROOT / "config")
    return AuditSettings(
        **kafka.settings("audit"),
        topic_prefix=prefix,
        keys_dir=keys,
        audit_database_url=f"sqlite:///{folder / 'audit.db'}",
    )


def intake_of(settings: AuditSettings, store: SqlAuditStore) -> AuditIntake:
    registry = Registry.load(settings.config_dir, KeyRing(settings.keys_dir, generate_missing=False))
    return AuditIntake(store, settings, registry_signature_check(registry), registry_sources(registry))


async def write_reads(kafka: KafkaAccess, settings: AuditSettings, count: int) -> None:
    """`count` genuine AuditRead records on audit.reads.v1, spread over its partitions."""
    await produce_audit_reads(
        kafka.client_options("audit"),
        settings.keys_dir,
        settings.config_dir,
        settings.topic(READS),
        count,
        actor="gm0363/intake-test",
        key_of=lambda number: f"reader-{number % 7}".encode(),
    )


async def end_offsets(kafka: KafkaAccess, topic: str) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(**kafka.client_options(ADMIN_PRINCIPAL))
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        return {(p.topic, p.partition): offset for p, offset in ends.items() if offset}
    finally:
        await consumer.stop()


async def kafka_committed(kafka: KafkaAccess, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(**kafka.client_options(ADMIN_PRINCIPAL))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {(p.topic, p.partition): meta.offset for p, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


@asynccontextmanager
async def running(intake: AuditIntake) -> AsyncIterator[AuditIntake]:
    await intake.start()
    task = asyncio.create_task(intake.run())
    try:
        yield intake
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await intake.stop()


def reads_in(store: SqlAuditStore, settings: AuditSettings) -> Counter[tuple[int, int]]:
    """How often each record of audit.reads.v1 (partition, offset) is in the log."""
    topic = settings.topic(READS)
    return Counter(
        (r.kafka_partition, r.kafka_offset) for r in store.records_in_sequence() if r.kafka_topic == topic
    )


async def logged_reads(store: SqlAuditStore, settings: AuditSettings, count: int) -> Counter[tuple[int, int]]:
    """How often each read is in the log, once at least `count` of them are (waits up to 60 s)."""

    async def all_logged() -> Counter[tuple[int, int]] | None:
        found = await asyncio.to_thread(reads_in, store, settings)
        return found if sum(found.values()) >= count else None

    return await eventually_async(all_logged, what=f"{count:,} reads in the log", timeout=60)


def appended(kind: str) -> float:
    return REGISTRY.get_sample_value("safetychain_audit_appends_total", {"kind": kind}) or 0.0


class CountingStore(SqlAuditStore):
    """Remembers the size of every batch it appended."""

    batches: list[int]

    def append_batch(
        self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
    ) -> list[AuditRecord | None]:
        stored = super().append_batch(facts, consumed, epoch)
        self.batches = [*getattr(self, "batches", []), len(facts)]
        return stored


async def test_what_a_poll_returns_is_appended_in_one_transaction_with_its_offsets(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = audit_settings(kafka_access, kafka_prefix, tmp_path)
    await write_reads(kafka_access, settings, 1500)
    ends = await end_offsets(kafka_access, settings.topic(READS))
    store = CountingStore(settings.audit_database_url)
    async with running(intake_of(settings, store)):
        logged = await logged_reads(store, settings, 1500)
        # every record once, in a few large transactions
        assert len(logged) == 1500 and max(logged.values()) == 1
        assert max(store.batches) > 100 and len(store.batches) <= 1500 // 50, store.batches
        # the store holds where each partition ends, and Kafka hears the same once it committed
        assert {k: v for k, v in store.consumed_offsets().items() if k in ends} == ends

        async def told_kafka() -> dict[tuple[str, int], int] | None:
            committed = await kafka_committed(kafka_access, settings.topic("audit"))
            return committed if all(committed.get(k) == v for k, v in ends.items()) else None

        await eventually_async(told_kafka, what="the store's offsets committed to Kafka", timeout=30)
    assert verify_store(store).intact
    store.engine.dispose()


def die_right_after_the_store_commits(settings_json: str) -> None:
    """A child process: the intake, on a store that commits its first batch and then kills the
    process (os._exit), before the intake can tell Kafka."""

    class DiesAfterItsFirstCommit(SqlAuditStore):
        def append_batch(
            self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
        ) -> list[AuditRecord | None]:
            stored = super().append_batch(facts, consumed, epoch)
            if any(stored):
                os._exit(9)  # the store committed; nothing after it happens
            return stored

    settings = AuditSettings(**json.loads(settings_json))
    store = DiesAfterItsFirstCommit(settings.audit_database_url)

    async def run() -> None:
        async with running(intake_of(settings, store)):
            await asyncio.sleep(120)

    asyncio.run(run())


async def test_killed_between_the_stores_commit_and_kafkas_it_resumes_where_the_store_ends(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = audit_settings(kafka_access, kafka_prefix, tmp_path)
    await write_reads(kafka_access, settings, 1200)
    # a process whose store commits a batch, and which dies before anything else happens
    child = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "import sys; from tests.integration.test_audit_intake import die_right_after_the_store_commits;"
            " die_right_after_the_store_commits(sys.argv[1])",
            settings.model_dump_json(
                include={*kafka_access.settings("audit"), "topic_prefix", "keys_dir", "audit_database_url"}
            ),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "SC_ENVIRONMENT": "development"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 9, child.stderr[-3000:]
    store = SqlAuditStore(settings.audit_database_url)
    first = sum(reads_in(store, settings).values())
    stored_offsets = store.consumed_offsets()
    assert 0 < first < 1200
    # Kafka never heard of that batch: its committed offsets lag behind the store's
    committed = await kafka_committed(kafka_access, settings.topic("audit"))
    assert any(committed.get(partition, 0) < offset for partition, offset in stored_offsets.items())

    # restarted, the intake resumes where the store ends: nothing is read twice, nothing skipped
    duplicates_before = appended("duplicate")
    async with running(intake_of(settings, store)):
        logged = await logged_reads(store, settings, 1200)
    assert len(logged) == 1200 and max(logged.values()) == 1  # each exactly once
    assert appended("duplicate") == duplicates_before  # the committed batch was not even read again
    assert verify_store(store).intact
    store.engine.dispose()


class RefusingStore(SqlAuditStore):
    """Refuses any batch holding the fact of one record (as PostgreSQL refuses a NUL character),
    while it answers; or, while `down`, every batch, answering no ping."""

    refused: tuple[str, int, int] | None = None
    down = False

    def append_batch(
        self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
    ) -> list[AuditRecord | None]:
        if self.down:
            raise ConnectionError("the store is down")
        poison = [f for f in facts if (f.kafka_topic, f.kafka_partition, f.kafka_offset) == self.refused]
        if poison and poison[0].decision != "unreadable":
            raise ValueError("the store refuses this fact")
        return super().append_batch(facts, consumed, epoch)

    def ping(self) -> bool:
        return not self.down and super().ping()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "backoff_seconds", lambda failures: 0.05)


@pytest.mark.usefixtures("quick_retries")
async def test_a_fact_the_store_keeps_refusing_is_kept_as_unstorable_and_the_rest_flow_on(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = audit_settings(kafka_access, kafka_prefix, tmp_path)
    await write_reads(kafka_access, settings, 300)
    store = RefusingStore(settings.audit_database_url)
    ends = await end_offsets(kafka_access, settings.topic(READS))
    (topic, partition), end = next(iter(ends.items()))
    store.refused = (topic, partition, end // 2)
    async with running(intake_of(settings, store)):
        logged = await logged_reads(store, settings, 300)
    assert len(logged) == 300 and max(logged.values()) == 1
    (kept,) = [
        r
        for r in store.records_in_sequence()
        if (r.kafka_topic, r.kafka_partition, r.kafka_offset) == store.refused
    ]
    assert kept.decision == "unreadable" and kept.reasons == (UNSTORABLE,)
    assert sum(1 for r in store.records_in_sequence() if r.decision == "unreadable") == 1
    store.engine.dispose()


@pytest.mark.usefixtures("quick_retries")
async def test_a_store_that_is_down_for_a_while_counts_against_no_record(
    kafka_access: KafkaAccess, kafka_prefix: str, tmp_path: Path
) -> None:
    settings = audit_settings(kafka_access, kafka_prefix, tmp_path)
    await write_reads(kafka_access, settings, 200)
    store = RefusingStore(settings.audit_database_url)
    store.down = True
    intake = intake_of(settings, store)
    async with running(intake):

        async def failing(failures: int) -> bool:
            return intake.failures_in_a_row >= failures if failures else intake.failures_in_a_row == 0

        # it fails batch after batch (one record at a time, after a while), and says so
        await eventually_async(lambda: failing(8), what="eight failures in a row")
        store.down = False

        logged = await logged_reads(store, settings, 200)
        await eventually_async(lambda: failing(0), what="the intake well again")
    assert len(logged) == 200 and max(logged.values()) == 1
    assert not [r for r in store.records_in_sequence() if r.decision == "unreadable"]
    store.engine.dispose()
