"""The audit store: an append-only repository behind one small interface.

`SqlAuditStore` runs on SQLAlchemy Core, SQLite by default and PostgreSQL for scale. Appends
are idempotent on Kafka provenance (topic, partition, offset): a redelivered record is not
logged twice. Appends are serialised (a lock in this process plus the unique sequence number
in the database), since each record's hash depends on the one before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Engine

from services.audit.chain import GENESIS, Verification, chain_hash, verify_chain
from services.audit.facts import AuditFact
from shared.sql import answers, create_store_engine

metadata = MetaData()

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("recorded_at", String(40), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("event_id", String(100), nullable=False),
    Column("event_time", String(40), nullable=False),
    Column("source", String(100), nullable=False),
    Column("target", String(100)),
    Column("signal_id", String(36), index=True),
    Column("subject_pseudonym", String(64), index=True),
    Column("category", String(50)),
    Column("purpose", String(100)),
    Column("legal_basis", String(300)),
    Column("agreement_id", String(100)),
    Column("agreement_version", Integer),
    Column("fields", Text, nullable=False),
    Column("delivery_id", String(36), index=True),
    Column("decision", String(20)),
    Column("reasons", Text, nullable=False),
    Column("correlation_id", String(32), nullable=False, index=True),
    Column("kafka_topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("kafka_topic", "kafka_partition", "kafka_offset", name="uq_audit_provenance"),
)

_JSON_COLUMNS = ("fields", "reasons")


@dataclass(frozen=True)
class RecordQuery:
    """Which records to read; every given criterion must match."""

    signal_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    subject: str | None = None
    organisation: str | None = None  # as source or target
    within: str | None = None  # the reader's scope: only records where it is source or target

    def criteria(self) -> dict[str, str]:
        """The criteria given, by name (what a read record says was asked)."""
        return {
            name: value
            for name, value in (
                ("signal_id", self.signal_id),
                ("correlation_id", self.correlation_id),
                ("event_type", self.event_type),
                ("subject", self.subject),
                ("organisation", self.organisation),
            )
            if value is not None
        }


class AuditStore(Protocol):
    def append(self, fact: AuditFact) -> dict[str, Any] | None:
        """Append one fact; returns the stored record, or None if its provenance was seen."""

    def records(self, query: RecordQuery | None = None) -> list[dict[str, Any]]:
        """The records matching `query` (all when None), ordered by event time then sequence.
        Asked by signal or correlation id, it adds the partner-side records (deliveries,
        notices, receipts) linked by the delivery ids of the records found."""

    def verify(self) -> Verification:
        """Recompute the whole chain; names the first record that does not fit."""

    def ping(self) -> bool:
        """The store answers."""


def _to_row(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, **{name: json.dumps(list(record[name])) for name in _JSON_COLUMNS}}


def _from_row(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for name in _JSON_COLUMNS:
        record[name] = json.loads(record[name])
    return record


class SqlAuditStore:
    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        metadata.create_all(self._engine)
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def append(self, fact: AuditFact) -> dict[str, Any] | None:
        with self._lock, self._engine.begin() as connection:
            seen = connection.execute(
                select(audit_records.c.seq).where(
                    audit_records.c.kafka_topic == fact.kafka_topic,
                    audit_records.c.kafka_partition == fact.kafka_partition,
                    audit_records.c.kafka_offset == fact.kafka_offset,
                )
            ).first()
            if seen is not None:
                return None
            last = connection.execute(
                select(audit_records.c.seq, audit_records.c.hash)
                .order_by(audit_records.c.seq.desc())
                .limit(1)
            ).first()
            previous = bytes.fromhex(last.hash) if last else GENESIS
            record: dict[str, Any] = {
                "seq": (last.seq if last else 0) + 1,
                "recorded_at": datetime.now(UTC).isoformat(),
                **fact.model_dump(mode="json"),
                "prev_hash": previous.hex(),
            }
            record["fields"] = list(record["fields"])
            record["reasons"] = list(record["reasons"])
            record["hash"] = chain_hash(previous, record).hex()
            connection.execute(audit_records.insert().values(**_to_row(record)))
            return record

    def records(self, query: RecordQuery | None = None) -> list[dict[str, Any]]:
        wanted = query or RecordQuery()
        statement = select(audit_records)
        columns = audit_records.c
        for column, value in (
            (columns.signal_id, wanted.signal_id),
            (columns.correlation_id, wanted.correlation_id),
            (columns.event_type, wanted.event_type),
            (columns.subject_pseudonym, wanted.subject),
        ):
            if value is not None:
                statement = statement.where(column == value)
        for party in (wanted.organisation, wanted.within):
            if party is not None:
                statement = statement.where((columns.source == party) | (columns.target == party))
        with self._engine.connect() as connection:
            found = {row.seq: _from_row(row) for row in connection.execute(statement)}
            if wanted.signal_id is not None or wanted.correlation_id is not None:
                # A partner's records name its own delivery id, never the signal or its trace:
                # the decision records found lead to them.
                delivery_ids = {r["delivery_id"] for r in found.values() if r["delivery_id"]}
                if delivery_ids:
                    linked = select(audit_records).where(columns.delivery_id.in_(delivery_ids))
                    if wanted.within is not None:
                        linked = linked.where(
                            (columns.source == wanted.within) | (columns.target == wanted.within)
                        )
                    for row in connection.execute(linked):
                        found.setdefault(row.seq, _from_row(row))
        return sorted(found.values(), key=lambda record: (record["event_time"], record["seq"]))

    def _all_in_sequence(self) -> Iterator[dict[str, Any]]:
        with self._engine.connect() as connection:
            for row in connection.execute(select(audit_records).order_by(audit_records.c.seq)):
                yield _from_row(row)

    def verify(self) -> Verification:
        return verify_chain(self._all_in_sequence())

    def ping(self) -> bool:
        return answers(self._engine)
