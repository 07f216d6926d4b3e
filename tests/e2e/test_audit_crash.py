"""SIGKILL of the audit service while it ingests 20,000 records: restarted, it holds each exactly
once, in a valid tree consistent with every checkpoint it issued before the crash. (As many as
that, since audit appends thousands a second in batches: the kill must land mid-way.)

Its own module and stack: the service is killed. The records are AuditRead facts, written to
audit.reads.v1 with the audit service's own credential and key (the only writer the ACLs and
the signature check allow there), so they are genuine facts, fast to make.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from devstack.kafka import KafkaAccess
from shared.contracts.events import AuditRead
from shared.plumbing.policy import Role
from tests.audit_reads import produce_audit_reads
from tests.conftest import fresh_prefix
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.polling import eventually

RECORDS = 20_000
READS_TOPIC = "audit.reads.v1"


@pytest.fixture(scope="module")
def crash_stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(kafka_access, fresh_prefix(), tmp_path_factory.mktemp("audit-crash")) as running:
        yield running


def write_reads(stack: Stack, count: int) -> None:
    asyncio.run(
        produce_audit_reads(
            stack.kafka_options("audit"),
            stack.keys_dir,
            CONFIG_DIR,
            stack.topic(READS_TOPIC),
            count,
            actor="gm0363/crash-test",
            key_of=lambda _: b"gm0363",
        )
    )


def officer_get(stack: Stack, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{stack.url('audit')}{path}",
        params=params,
        headers=stack.bearer("safety-chain", Role.PRIVACY_OFFICER),
        timeout=120,
    )


def test_killing_audit_mid_ingestion_loses_and_duplicates_nothing(crash_stack: Stack) -> None:
    stack = crash_stack
    write_reads(stack, RECORDS)

    # Kill it once it is well into the batch, not before and not after.
    def well_into_the_batch() -> int | None:
        size: int = stack.verify_audit().json()["size"]
        return size if size >= RECORDS // 5 else None

    size = eventually(well_into_the_batch, what="audit to start ingesting", timeout=120, interval=0.2)
    stack.services["audit"].kill()
    assert size < RECORDS, "killed too late to prove anything: ingestion had finished"
    before_crash = [json.loads(r.value or b"{}") for r in stack.read_topic("audit.checkpoints.v1")]
    assert before_crash, "no checkpoint was issued before the crash"
    stack.restart("audit")

    def all_ingested() -> list[dict[str, object]] | None:
        records = [
            r
            for r in stack.audit_records(event_type=AuditRead.event_type)
            if r["kafka_topic"] == stack.topic(READS_TOPIC) and r["source"] == "gm0363"
        ]
        return records if len(records) >= RECORDS else None

    records = eventually(all_ingested, timeout=300, interval=2)
    provenance = Counter((r["kafka_partition"], r["kafka_offset"]) for r in records)
    assert len(provenance) == RECORDS and max(provenance.values()) == 1  # each exactly once

    # A valid tree, consistent with every checkpoint issued before the crash (verify holds the
    # store to every checkpoint on the topic).
    verified = stack.verify_audit().json()
    assert verified["intact"] is True, verified
    assert max(c["size"] for c in before_crash) <= verified["size"]
