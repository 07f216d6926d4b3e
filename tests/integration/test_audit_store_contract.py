"""One contract for every audit store backend: SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from services.audit.facts import AuditFact
from services.audit.store import RecordQuery, SqlAuditStore, audit_records


def fact(
    offset: int, signal_id: str = "s-1", seconds: int = 0, topic: str = "signals.accepted.v1"
) -> AuditFact:
    return AuditFact(
        event_type="nl.safetychain.signal.accepted.v1",
        event_id=str(uuid.uuid4()),
        event_time=datetime(2026, 11, 28, 12, 0, tzinfo=UTC) + timedelta(seconds=seconds),
        source="gm0363",
        signal_id=signal_id,
        fields=("category", "summary"),
        reasons=("because",),
        correlation_id="a" * 32,
        kafka_topic=topic,
        kafka_partition=0,
        kafka_offset=offset,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAuditStore]:
    if request.param == "sqlite":
        yield SqlAuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
        return
    url: str = request.getfixturevalue("postgres_url")
    store = SqlAuditStore(url)
    with store.engine.begin() as connection:
        connection.execute(audit_records.delete())
    yield store
    store.engine.dispose()


def test_appended_facts_form_an_intact_chain(store: SqlAuditStore) -> None:
    for offset in range(5):
        assert store.append(fact(offset)) is not None
    result = store.verify()
    assert result.intact and result.records_checked == 5


def test_a_redelivered_record_is_logged_once(store: SqlAuditStore) -> None:
    assert store.append(fact(7)) is not None
    assert store.append(fact(7)) is None
    assert len(store.records()) == 1


def test_records_of_one_signal_come_in_event_time_order(store: SqlAuditStore) -> None:
    store.append(fact(0, "s-2", seconds=5, topic="exchange.decisions.v1"))
    store.append(fact(0, "s-2", seconds=1))
    store.append(fact(1, "s-3", seconds=3))
    records = store.records(RecordQuery(signal_id="s-2"))
    assert [r["kafka_topic"] for r in records] == ["signals.accepted.v1", "exchange.decisions.v1"]
    assert records[0]["fields"] == ["category", "summary"]


def test_records_can_be_found_by_event_type_subject_and_organisation(store: SqlAuditStore) -> None:
    store.append(fact(0, "s-4"))
    store.append(
        fact(1, "s-5", topic="exchange.decisions.v1").model_copy(
            update={
                "event_type": "nl.safetychain.exchange.decided.v1",
                "target": "riec-amsterdam",
                "subject_pseudonym": "p1",
            }
        )
    )
    decided = store.records(RecordQuery(event_type="nl.safetychain.exchange.decided.v1"))
    assert [r["signal_id"] for r in decided] == ["s-5"]
    assert [r["signal_id"] for r in store.records(RecordQuery(subject="p1"))] == ["s-5"]
    assert [r["signal_id"] for r in store.records(RecordQuery(organisation="riec-amsterdam"))] == ["s-5"]
    assert {r["signal_id"] for r in store.records(RecordQuery(organisation="gm0363"))} == {"s-4", "s-5"}


def test_a_changed_record_fails_verification_and_is_named(store: SqlAuditStore) -> None:
    for offset in range(4):
        store.append(fact(offset))
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET source = 'gm0599' WHERE seq = 3"))
    result = store.verify()
    assert not result.intact
    assert result.first_bad_seq == 3
    assert result.records_checked == 2


def test_a_deleted_record_fails_verification(store: SqlAuditStore) -> None:
    for offset in range(4):
        store.append(fact(offset))
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_records WHERE seq = 2"))
    result = store.verify()
    assert not result.intact and result.first_bad_seq == 3
