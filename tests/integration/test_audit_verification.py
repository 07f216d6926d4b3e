"""Verification of the audit log runs once for everyone who asks at the same time, and after its
first run reads only what was appended since the last verified tree head (an SQLite store, as the
service runs it; services/audit/log/verification.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.verification import LogVerifier, verify_store
from shared.contracts.tlog.checkpoint import Checkpoint
from tests.integration.test_audit_store_contract import (
    ORIGIN,
    fact,
    keep_checkpoint,
    outside_checkpoint,
    rehash_behind_the_logs_back,
)


def runs(kind: str, outcome: str = "intact") -> float:
    value = REGISTRY.get_sample_value(
        "safetychain_audit_verifications_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def records_read() -> float:
    return REGISTRY.get_sample_value("safetychain_audit_verified_records_total") or 0.0


@pytest.fixture
def database(tmp_path: Path) -> Iterator[SqlAuditStore]:
    store = SqlAuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.engine.dispose()


class Published:
    """The checkpoints kept outside the store, as audit.checkpoints.v1 holds them; `hold` keeps
    the next read waiting until the test lets it go (so callers provably overlap)."""

    def __init__(self) -> None:
        self.checkpoints: list[Checkpoint] = []
        self.reads = 0
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def __call__(self) -> Sequence[Checkpoint]:
        self.reads += 1
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        return list(self.checkpoints)


async def test_callers_who_ask_while_a_verification_runs_share_it(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(8)])
    published = Published()
    published.hold = asyncio.Event()
    verifier = LogVerifier(database, published, None)
    before = runs("full")
    # three officers ask at once; the first run is held while it reads the outside checkpoints
    asking = [asyncio.create_task(verifier.verify(f"safety-chain/officer-{n}")) for n in range(3)]
    await published.reading.wait()
    published.hold.set()
    answers = await asyncio.gather(*asking)
    # one run, one answer for all three
    assert published.reads == 1 and runs("full") - before == 1
    assert answers[0] is answers[1] is answers[2]
    assert answers[0].result.intact and answers[0].by == "safety-chain/officer-0"
    # once it is done, the next caller starts a new one
    published.hold = None
    assert (await verifier.verify("safety-chain/officer-3")) is not answers[0]
    assert published.reads == 2


async def test_a_second_verification_reads_only_the_appended_records_and_catches_a_tampered_one(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(20)])
    keep_checkpoint(database, 20)
    published = Published()
    published.checkpoints.append(outside_checkpoint(database, 20))
    verifier = LogVerifier(database, published, None)
    first = await verifier.verify("safety-chain/officer")
    assert first.kind == "full" and first.result.intact and first.records_read == 20
    # five records are appended and checkpointed; the verified twenty are not read again
    database.append_batch([fact(offset) for offset in range(20, 25)])
    keep_checkpoint(database, 25)
    published.checkpoints.append(outside_checkpoint(database, 25))
    read_before = records_read()
    second = await verifier.verify("safety-chain/officer")
    assert second.kind == "incremental" and second.result.intact, second
    assert second.records_read == 5 and records_read() - read_before == 5
    assert (
        second.result.size == 25
        and second.result.root_hash == outside_checkpoint(database, 25).root_hash.hex()
    )
    # a record appended after that checkpoint is changed behind the log's back: the next run names it
    database.append_batch([fact(offset) for offset in range(25, 28)])
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log_records SET target = 'riec-amsterdam' WHERE seq = 27"))
    read_before = records_read()
    third = await verifier.verify("safety-chain/officer")
    assert third.kind == "incremental" and not third.result.intact
    assert third.result.first_bad_seq == 27 and "record 27" in (third.result.problem or "")
    assert records_read() - read_before == 2  # 26 and 27: nothing before the verified head


def rewrite_record_4_and_grow(database: SqlAuditStore) -> None:
    """Record 4 of ten rewritten, every node recomputed and the stored checkpoints dropped, behind
    the log's back; then the log grows on by two records."""
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log_records SET source = 'gm0599' WHERE seq = 4"))
    rehash_behind_the_logs_back(database)
    database.append_batch([fact(offset) for offset in range(10, 12)])


async def test_history_rewritten_before_the_verified_head_with_its_nodes_is_caught(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(10)])
    keep_checkpoint(database, 10)
    published = Published()
    published.checkpoints.append(outside_checkpoint(database, 10))
    verifier = LogVerifier(database, published, None)
    assert (await verifier.verify("safety-chain/officer")).result.intact
    # history rewritten with its nodes, the stored checkpoints dropped; the log grows on
    rewrite_record_4_and_grow(database)
    answer = await verifier.verify("safety-chain/officer")
    # the stored tree no longer extends the verified one; the full run names the first suspect
    # record (after the last matching checkpoint kept outside)
    assert not answer.result.intact and answer.kind == "full"
    assert answer.result.first_bad_seq == 1, answer


async def test_the_verified_head_catches_a_rewrite_the_store_and_its_checkpoints_agree_with(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(10)])
    verifier = LogVerifier(database, Published(), None)  # no checkpoint kept outside yet
    assert (await verifier.verify("safety-chain/officer")).result.intact
    rewrite_record_4_and_grow(database)
    answer = await verifier.verify("safety-chain/officer")
    # on its own the store is whole again; the tree head verified before is what it contradicts
    assert not answer.result.intact and answer.kind == "incremental"
    assert "does not extend the tree verified at size 10" in (answer.result.problem or "")


async def test_a_checkpoint_issued_during_the_last_run_is_proven_from_the_head_not_by_a_full_run(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(12)])
    published = Published()
    verifier = LogVerifier(database, published, None)
    assert (await verifier.verify("safety-chain/officer")).kind == "full"
    # the issuer had read size 9 before that run and kept and published its checkpoint after it
    keep_checkpoint(database, 9)
    published.checkpoints.append(outside_checkpoint(database, 9))
    database.append_batch([fact(offset) for offset in range(12, 14)])
    later = await verifier.verify("safety-chain/officer")
    assert later.kind == "incremental" and later.result.intact and later.records_read == 2
    # a checkpoint below the head with another root is no tree head of the verified tree
    published.checkpoints.append(Checkpoint(ORIGIN, 7, bytes(32)))
    refused = await verifier.verify("safety-chain/officer")
    assert not refused.result.intact and refused.kind == "full"
    assert refused.result.first_bad_seq == 1, refused  # the records differ from it, from the start


def test_records_nodes_and_checkpoints_appended_while_a_full_run_reads_are_left_to_the_next_run(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(10)])
    keep_checkpoint(database, 10)

    def ingest_meanwhile(done: int, total: int) -> None:
        # the service keeps ingesting after this run has read its records (and checkpoints them)
        if done == total == 10:
            database.append_batch([fact(offset) for offset in range(10, 16)])
            keep_checkpoint(database, 16)

    result = verify_store(database, ingest_meanwhile)
    assert result.intact and result.size == 10, result
    # a tail cut with its nodes and checkpoint kept is still a cut
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log_records WHERE seq > 12"))
    cut = verify_store(database)
    assert not cut.intact and cut.first_bad_seq == 13, cut
