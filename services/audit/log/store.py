"""The audit log's storage: one repository port (`AuditStore`), three implementations.

`InMemoryAuditStore` (fast tests), `SqlAuditStore` on SQLite (the default: WAL, one
transaction per batch) and on PostgreSQL (scale), all held to one contract suite
(tests/integration/test_audit_store_contract.py). A store keeps the records (the leaves), the
perfect subtree hashes of their RFC 9162 Merkle tree (written once, as appends complete them,
so proofs read O(log n) stored nodes and nothing rehashes the log), and the signed checkpoints
and witnesses' cosignatures that commit to it. Appends are idempotent on Kafka provenance
(topic, partition, offset): a redelivered record is not logged twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    inspect,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from services.audit.log.facts import FLAGGED_DECISIONS, AuditFact
from services.audit.log.leaf import ADDED_FIELDS, record_leaf_hash
from shared.contracts.events import ErasureNotice, ExchangeReceipt, SignalDelivered
from shared.contracts.tlog.merkle import completed_nodes
from shared.plumbing.policy import ALL_RECORDS
from shared.plumbing.sql import answers, create_store_engine

metadata = MetaData()

audit_records = Table(
    "audit_log_records",
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
    Column("confidential_until", String(10)),
    Column("correlation_id", String(32), nullable=False, index=True),
    Column("kafka_topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    UniqueConstraint("kafka_topic", "kafka_partition", "kafka_offset", name="uq_audit_log_provenance"),
)
"""One row per leaf: the record itself; its leaf bytes are services.audit.log.leaf.leaf_bytes(row)."""

audit_nodes = Table(
    "audit_log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)
"""The perfect subtrees of the Merkle tree (shared.contracts.tlog.merkle): level 0 holds the leaf hashes.
Written once, when an append completes them; proofs read O(log n) of them."""

audit_checkpoints = Table(
    "audit_log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("issued_at", String(40), nullable=False),
)
"""Signed checkpoints (C2SP tlog-checkpoint notes) the log issued, one per tree size."""

audit_cosignatures = Table(
    "audit_log_cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(200), primary_key=True),
    Column("line", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
)
"""Witnesses' cosignature lines (C2SP tlog-cosignature) on a checkpoint, beside it."""

_JSON_COLUMNS = ("fields", "reasons")


@dataclass(frozen=True)
class RecordQuery:
    """Which records to read; every given criterion must match. Times are RFC 3339 strings,
    `since` inclusive and `until` exclusive."""

    signal_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    subject: str | None = None
    organisation: str | None = None  # as source or target
    category: str | None = None
    decision: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    delivery_id: str | None = None  # a delivery's or erasure notice's id (the partner's own)
    since: str | None = None
    until: str | None = None
    flagged: bool | None = None  # False: verified facts only; True: only what the log flagged
    within: str | None = None  # the reader's scope: only records where it is source or target
    received_only: bool = False  # with `within`, a partner's scope: only what reached it

    def criteria(self) -> dict[str, str]:
        """The criteria given, by name (what a read record says was asked; the scope is the
        read's own field)."""
        return {name: str(value) for name, value in self._given() if name not in _SCOPE}

    @property
    def follows_deliveries(self) -> bool:
        """Asked about one signal, trace or subject: the partner-side records of its deliveries
        (which name the partner's own ids and pseudonyms) belong to the answer."""
        return self.signal_id is not None or self.correlation_id is not None or self.subject is not None

    def equalities(self) -> tuple[tuple[str, str | int], ...]:
        """(record key, wanted value) for every equality criterion given."""
        return tuple(
            (_RECORD_KEY.get(name, name), value)
            for name, value in self._given()
            if name not in _NOT_EQUALITIES
        )

    def _given(self) -> list[tuple[str, str | int]]:
        return [
            (f.name, value)
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None and not (f.name == "received_only" and not value)
        ]


RECEIVED_EVENTS: Final = frozenset(
    {SignalDelivered.event_type, ErasureNotice.event_type, ExchangeReceipt.event_type}
)
"""What reaches a partner, under its own pseudonym and delivery id: its deliveries, its erasure
notices and its own receipts. Never a decision (consent decides for every partner, permit or
deny), a platform pseudonym or a signal id."""


@dataclass(frozen=True)
class ReaderScope:
    """Whose records a reader may see (from its grant, shared/plumbing/policy.py READ_AUDIT): the whole
    log (the platform's privacy officer), a municipality's records (it is source or target: what
    it provided and what was done with it), or a partner's (what reached it: `RECEIVED_EVENTS`
    where it is the recipient or the one who confirmed)."""

    organisation: str | None = None  # None: every record
    received_only: bool = False

    @classmethod
    def everything(cls) -> ReaderScope:
        return cls()

    @classmethod
    def municipality(cls, organisation: str) -> ReaderScope:
        return cls(organisation)

    @classmethod
    def partner(cls, organisation: str) -> ReaderScope:
        return cls(organisation, received_only=True)

    @property
    def name(self) -> str:
        """The scope as a read record states it: an organisation, or ALL_RECORDS."""
        return self.organisation or ALL_RECORDS

    def covers(self, record: Mapping[str, Any]) -> bool:
        return _in_scope(record, self.organisation, self.received_only)

    def query(self, **criteria: Any) -> RecordQuery:
        """The store query for `criteria` within this scope."""
        return RecordQuery(**criteria, within=self.organisation, received_only=self.received_only)


_SCOPE: Final = frozenset({"within", "received_only"})
_NOT_EQUALITIES: Final = frozenset({"organisation", "since", "until", "flagged", *_SCOPE})  # parties, ranges
_RECORD_KEY: Final = {"subject": "subject_pseudonym"}  # criterion -> record key, where they differ


@dataclass(frozen=True)
class Page:
    """One page of a search: at most `limit` records, ordered by (event time, sequence),
    oldest first unless `newest_first`; `after` is the (event_time, seq) of the last record of
    the previous page (keyset pagination: stable while the log grows)."""

    limit: int = 50
    after: tuple[str, int] | None = None
    newest_first: bool = False
    linked: bool = False  # with a query that follows deliveries: the linked records too (records())


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str  # the signed note, exactly as issued
    issued_at: str


class AuditStore(Protocol):
    """The audit log's repository port: append-only records with their Merkle tree, and the
    checkpoints and cosignatures that commit to it. Every implementation passes
    tests/integration/test_audit_store_contract.py."""

    def append_batch(self, facts: Sequence[AuditFact]) -> list[dict[str, Any] | None]:
        """Append facts in order, in one transaction; each stored record, or None for one whose
        provenance was seen (a redelivery is logged once)."""

    def append(self, fact: AuditFact) -> dict[str, Any] | None:
        """Append one fact (see append_batch)."""

    def size(self) -> int:
        """Number of records (leaves)."""

    def record(self, seq: int) -> dict[str, Any] | None:
        """One record by its sequence number (leaf index + 1)."""

    def records_in_sequence(self, start: int = 1) -> Iterator[dict[str, Any]]:
        """Every record from `start` on, in sequence order (streamed)."""

    def records(self, query: RecordQuery | None = None) -> list[dict[str, Any]]:
        """The records matching `query` (all when None), ordered by event time then sequence.
        Asked by signal, correlation id or subject, it adds the partner-side records
        (deliveries, notices, receipts) linked by the delivery ids of the records found."""

    def page(self, query: RecordQuery, page: Page) -> list[dict[str, Any]]:
        """One page of the records matching `query` exactly, or with `page.linked` of what
        `records(query)` answers (the linked partner-side records too): see Page."""

    def count(self, query: RecordQuery) -> int:
        """How many records match `query` exactly (what paging through it visits)."""

    def perfect_node(self, level: int, index: int) -> bytes:
        """A stored perfect subtree hash (shared.contracts.tlog.merkle.NodeReader); KeyError if absent."""

    def nodes_at(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Every stored node of one level, by index (verification compares them)."""

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a checkpoint the log issued (one per size; the same size again is ignored)."""

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, smallest size first."""

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        """Keep (or replace) a witness's cosignature line on the checkpoint of `size`."""

    def cosignatures(self, size: int) -> dict[str, str]:
        """The cosignature lines on the checkpoint of `size`, by witness."""

    def ping(self) -> bool:
        """The store answers."""


def new_record(seq: int, fact: AuditFact) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": seq,
        "recorded_at": datetime.now(UTC).isoformat(),
        **fact.model_dump(mode="json"),
    }
    record["fields"] = list(record["fields"])
    record["reasons"] = list(record["reasons"])
    return record


def _in_scope(record: Mapping[str, Any], within: str | None, received_only: bool) -> bool:
    if within is None:
        return True
    if received_only and record["event_type"] not in RECEIVED_EVENTS:
        return False
    return within in (record["source"], record["target"])


def _flagged_as_asked(record: Mapping[str, Any], flagged: bool | None) -> bool:
    return flagged is None or (record["decision"] in FLAGGED_DECISIONS) == flagged


def matches(record: Mapping[str, Any], query: RecordQuery) -> bool:
    if any(record[name] != value for name, value in query.equalities()):
        return False
    if query.since is not None and record["event_time"] < query.since:
        return False
    if query.until is not None and record["event_time"] >= query.until:
        return False
    if not _flagged_as_asked(record, query.flagged):
        return False
    if query.organisation is not None and query.organisation not in (record["source"], record["target"]):
        return False
    return _in_scope(record, query.within, query.received_only)


def linked_to(record: Mapping[str, Any], query: RecordQuery, delivery_ids: set[str]) -> bool:
    """A partner-side record that one of `delivery_ids` leads to, within the query's scope and
    integrity (see `linked_by_delivery`)."""
    return (
        record["delivery_id"] in delivery_ids
        and _in_scope(record, query.within, query.received_only)
        and _flagged_as_asked(record, query.flagged)
    )


def in_scope(record: Mapping[str, Any], scope: ReaderScope) -> bool:
    """Whether a reader whose audit scope is `scope` may see `record`."""
    return scope.covers(record)


def _position(record: Mapping[str, Any]) -> tuple[str, int]:
    return (record["event_time"], record["seq"])


def every_page(store: AuditStore, query: RecordQuery, size: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record matching `query`, oldest first, read a page at a time (an export of the
    whole log never sits in memory)."""
    after: tuple[str, int] | None = None
    while True:
        records = store.page(query, Page(limit=size, after=after))
        yield from records
        if len(records) < size:
            return
        after = (records[-1]["event_time"], records[-1]["seq"])


def paged(records: Iterable[dict[str, Any]], page: Page) -> list[dict[str, Any]]:
    """The reference keyset page over records already filtered (the in-memory store's)."""
    ordered = sorted(records, key=_position, reverse=page.newest_first)
    if page.after is not None:
        after = page.after
        ordered = [
            r for r in ordered if (_position(r) < after if page.newest_first else _position(r) > after)
        ]
    return ordered[: page.limit]


def linked_by_delivery(
    found: dict[int, dict[str, Any]], query: RecordQuery, candidates: Iterable[dict[str, Any]]
) -> None:
    """A partner's records name its own delivery id, never the signal or its trace: the decision
    records found lead to them (within the reader's scope)."""
    delivery_ids = {r["delivery_id"] for r in found.values() if r["delivery_id"]}
    for record in candidates:
        if linked_to(record, query, delivery_ids):
            found.setdefault(record["seq"], record)


def in_event_order(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(found, key=lambda record: (record["event_time"], record["seq"]))


class _PendingNodes:
    """Nodes of the batch being appended, over what the store already holds."""

    def __init__(self, stored: Callable[[int, int], bytes]) -> None:
        self.new: dict[tuple[int, int], bytes] = {}
        self._stored = stored

    def perfect_node(self, level: int, index: int) -> bytes:
        return self.new.get((level, index)) or self._stored(level, index)

    def add(self, leaf_index: int, leaf: bytes) -> None:
        for level, index, node in completed_nodes(leaf_index, leaf, self):
            self.new[(level, index)] = node


class InMemoryAuditStore:
    """The whole log in this process: for fast tests, and the reference the others are held to."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._provenance: set[tuple[str, int, int]] = set()
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._checkpoints: dict[int, StoredCheckpoint] = {}
        self._cosignatures: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()

    def append_batch(self, facts: Sequence[AuditFact]) -> list[dict[str, Any] | None]:
        with self._lock:
            pending = _PendingNodes(self.perfect_node)
            stored: list[dict[str, Any] | None] = []
            records: list[dict[str, Any]] = []
            seen = set(self._provenance)
            for fact in facts:
                provenance = (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset)
                if provenance in seen:
                    stored.append(None)
                    continue
                seen.add(provenance)
                record = new_record(len(self._records) + len(records) + 1, fact)
                pending.add(record["seq"] - 1, record_leaf_hash(record))
                records.append(record)
                stored.append(record)
            self._records.extend(records)
            self._provenance = seen
            self._nodes.update(pending.new)
            return [dict(record) if record else None for record in stored]

    def append(self, fact: AuditFact) -> dict[str, Any] | None:
        return self.append_batch([fact])[0]

    def size(self) -> int:
        return len(self._records)

    def record(self, seq: int) -> dict[str, Any] | None:
        return dict(self._records[seq - 1]) if 1 <= seq <= len(self._records) else None

    def records_in_sequence(self, start: int = 1) -> Iterator[dict[str, Any]]:
        for record in self._records[max(start, 1) - 1 :]:
            yield dict(record)

    def records(self, query: RecordQuery | None = None) -> list[dict[str, Any]]:
        wanted = query or RecordQuery()
        found = {r["seq"]: dict(r) for r in self._records if matches(r, wanted)}
        if wanted.follows_deliveries:
            linked_by_delivery(found, wanted, (dict(r) for r in self._records))
        return in_event_order(found.values())

    def page(self, query: RecordQuery, page: Page) -> list[dict[str, Any]]:
        if page.linked and query.follows_deliveries:
            return paged(self.records(query), page)
        return paged((dict(r) for r in self._records if matches(r, query)), page)

    def count(self, query: RecordQuery) -> int:
        return sum(1 for r in self._records if matches(r, query))

    def perfect_node(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise KeyError(f"no perfect node ({level}, {index})") from None

    def nodes_at(self, level: int) -> Iterator[tuple[int, bytes]]:
        yield from sorted((index, node) for (at, index), node in self._nodes.items() if at == level)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self._checkpoints.setdefault(checkpoint.size, checkpoint)

    def checkpoints(self) -> list[StoredCheckpoint]:
        return [self._checkpoints[size] for size in sorted(self._checkpoints)]

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        self._cosignatures.setdefault(size, {})[witness] = line

    def cosignatures(self, size: int) -> dict[str, str]:
        return dict(self._cosignatures.get(size, {}))

    def ping(self) -> bool:
        return True


def _to_row(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, **{name: json.dumps(list(record[name])) for name in _JSON_COLUMNS}}


def _from_row(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for name in _JSON_COLUMNS:
        record[name] = json.loads(record[name])
    return record


class SqlAuditStore:
    """SQLAlchemy Core: SQLite by default (WAL, one transaction per batch), PostgreSQL for scale.
    Appends are serialised (a lock in this process plus the sequence primary key), since every
    leaf's place in the tree follows from the one before."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        metadata.create_all(self._engine)
        _add_later_columns(self._engine)
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def append_batch(self, facts: Sequence[AuditFact]) -> list[dict[str, Any] | None]:
        with self._lock, self._engine.begin() as connection:

            def stored_node(level: int, index: int) -> bytes:
                return _node(connection, level, index)

            pending = _PendingNodes(stored_node)
            size = _size(connection)
            stored: list[dict[str, Any] | None] = []
            rows: list[dict[str, Any]] = []
            seen: set[tuple[str, int, int]] = set()
            for fact in facts:
                provenance = (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset)
                if provenance in seen or _seen(connection, provenance):
                    stored.append(None)
                    continue
                seen.add(provenance)
                record = new_record(size + len(rows) + 1, fact)
                pending.add(record["seq"] - 1, record_leaf_hash(record))
                rows.append(_to_row(record))
                stored.append(record)
            if rows:
                connection.execute(audit_records.insert(), rows)
                connection.execute(
                    audit_nodes.insert(),
                    [{"level": lv, "idx": ix, "hash": node.hex()} for (lv, ix), node in pending.new.items()],
                )
            return stored

    def append(self, fact: AuditFact) -> dict[str, Any] | None:
        return self.append_batch([fact])[0]

    def size(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(select(func.coalesce(func.max(audit_records.c.seq), 0))).scalar_one()
            )

    def record(self, seq: int) -> dict[str, Any] | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(audit_records).where(audit_records.c.seq == seq)).first()
        return _from_row(row) if row is not None else None

    def records_in_sequence(self, start: int = 1) -> Iterator[dict[str, Any]]:
        with self._engine.connect() as connection:
            statement = (
                select(audit_records).where(audit_records.c.seq >= start).order_by(audit_records.c.seq)
            )
            for row in connection.execution_options(yield_per=1000).execute(statement):
                yield _from_row(row)

    def records(self, query: RecordQuery | None = None) -> list[dict[str, Any]]:
        wanted = query or RecordQuery()
        columns = audit_records.c
        with self._engine.connect() as connection:
            statement = select(audit_records).where(*_conditions(wanted))
            found = {row.seq: _from_row(row) for row in connection.execute(statement)}
            if wanted.follows_deliveries:
                delivery_ids = {r["delivery_id"] for r in found.values() if r["delivery_id"]}
                if delivery_ids:
                    linked = select(audit_records).where(
                        columns.delivery_id.in_(delivery_ids), *_scope_and_integrity(wanted)
                    )
                    rows = (_from_row(row) for row in connection.execute(linked))
                    linked_by_delivery(found, wanted, rows)
        return in_event_order(found.values())

    def page(self, query: RecordQuery, page: Page) -> list[dict[str, Any]]:
        columns = audit_records.c
        # Byte order on every database (PostgreSQL would otherwise sort by its locale), so the
        # keyset and the in-memory reference agree.
        time = (
            columns.event_time.collate("C")
            if self._engine.dialect.name == "postgresql"
            else columns.event_time
        )
        wanted = and_(true(), *_conditions(query))
        if page.linked and query.follows_deliveries:
            found = (
                select(columns.delivery_id).where(wanted, columns.delivery_id.is_not(None)).scalar_subquery()
            )
            linked = and_(columns.delivery_id.in_(found), *_scope_and_integrity(query))
            wanted = or_(wanted, linked)
        statement = select(audit_records).where(wanted)
        if page.after is not None:
            after_time, after_seq = page.after
            later = (time > after_time) | ((time == after_time) & (columns.seq > after_seq))
            earlier = (time < after_time) | ((time == after_time) & (columns.seq < after_seq))
            statement = statement.where(earlier if page.newest_first else later)
        order = (time.desc(), columns.seq.desc()) if page.newest_first else (time.asc(), columns.seq.asc())
        statement = statement.order_by(*order).limit(page.limit)
        with self._engine.connect() as connection:
            return [_from_row(row) for row in connection.execute(statement)]

    def count(self, query: RecordQuery) -> int:
        statement = select(func.count()).select_from(audit_records).where(*_conditions(query))
        with self._engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def perfect_node(self, level: int, index: int) -> bytes:
        with self._engine.connect() as connection:
            return _node(connection, level, index)

    def nodes_at(self, level: int) -> Iterator[tuple[int, bytes]]:
        with self._engine.connect() as connection:
            statement = (
                select(audit_nodes.c.idx, audit_nodes.c.hash)
                .where(audit_nodes.c.level == level)
                .order_by(audit_nodes.c.idx)
            )
            for row in connection.execution_options(yield_per=1000).execute(statement):
                yield int(row.idx), bytes.fromhex(row.hash)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._engine.begin() as connection:
            exists = connection.execute(
                select(audit_checkpoints.c.size).where(audit_checkpoints.c.size == checkpoint.size)
            ).first()
            if exists is None:
                connection.execute(
                    audit_checkpoints.insert().values(
                        size=checkpoint.size,
                        root_hash=checkpoint.root_hash.hex(),
                        note=checkpoint.note,
                        issued_at=checkpoint.issued_at,
                    )
                )

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.size))
            return [
                StoredCheckpoint(int(r.size), bytes.fromhex(r.root_hash), r.note, r.issued_at) for r in rows
            ]

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        with self._engine.begin() as connection:
            where = (audit_cosignatures.c.size == size) & (audit_cosignatures.c.witness == witness)
            connection.execute(audit_cosignatures.delete().where(where))
            connection.execute(
                audit_cosignatures.insert().values(
                    size=size, witness=witness, line=line, received_at=datetime.now(UTC).isoformat()
                )
            )

    def cosignatures(self, size: int) -> dict[str, str]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(audit_cosignatures).where(audit_cosignatures.c.size == size))
            return {row.witness: row.line for row in rows}

    def ping(self) -> bool:
        return answers(self._engine)


def _add_later_columns(engine: Engine) -> None:
    """A log created before a column existed gains it (empty: services.audit.log.leaf keeps such
    records' bytes as they were)."""
    present = {column["name"] for column in inspect(engine).get_columns(audit_records.name)}
    with engine.begin() as connection:
        for name in ADDED_FIELDS:
            if name not in present:
                kind = audit_records.c[name].type.compile(engine.dialect)
                connection.execute(text(f"ALTER TABLE {audit_records.name} ADD COLUMN {name} {kind}"))


def _conditions(query: RecordQuery) -> list[ColumnElement[bool]]:
    columns = audit_records.c
    found: list[ColumnElement[bool]] = [columns[name] == value for name, value in query.equalities()]
    if query.since is not None:
        found.append(columns.event_time >= query.since)
    if query.until is not None:
        found.append(columns.event_time < query.until)
    if query.organisation is not None:
        found.append((columns.source == query.organisation) | (columns.target == query.organisation))
    return found + _scope_and_integrity(query)


def _scope_and_integrity(query: RecordQuery) -> list[ColumnElement[bool]]:
    """The reader's scope and the integrity asked for (`_in_scope`, `_flagged_as_asked`)."""
    columns = audit_records.c
    found: list[ColumnElement[bool]] = []
    if query.within is not None:
        found.append((columns.source == query.within) | (columns.target == query.within))
        if query.received_only:
            found.append(columns.event_type.in_(sorted(RECEIVED_EVENTS)))
    flagged = columns.decision.in_(sorted(FLAGGED_DECISIONS))
    if query.flagged is True:
        found.append(flagged)
    elif query.flagged is False:
        found.append(columns.decision.is_(None) | ~flagged)
    return found


def _size(connection: Connection) -> int:
    return int(connection.execute(select(func.coalesce(func.max(audit_records.c.seq), 0))).scalar_one())


def _node(connection: Connection, level: int, index: int) -> bytes:
    found = connection.execute(
        select(audit_nodes.c.hash).where((audit_nodes.c.level == level) & (audit_nodes.c.idx == index))
    ).first()
    if found is None:
        raise KeyError(f"no perfect node ({level}, {index})")
    return bytes.fromhex(found.hash)


def _seen(connection: Connection, provenance: tuple[str, int, int]) -> bool:
    topic, partition, offset = provenance
    return (
        connection.execute(
            select(audit_records.c.seq).where(
                audit_records.c.kafka_topic == topic,
                audit_records.c.kafka_partition == partition,
                audit_records.c.kafka_offset == offset,
            )
        ).first()
        is not None
    )
