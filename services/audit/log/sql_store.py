"""The audit log in SQL (SQLAlchemy Core): SQLite by default, PostgreSQL for scale.

One row per record (its leaf bytes are services.audit.log.leaf.leaf_bytes of the row), the
perfect subtree hashes of the Merkle tree beside them, and the signed checkpoints and
witnesses' cosignatures. The queries say in SQL what services.audit.log.query says in Python.
The sequencer's lease (lease.py) is one row of its own table: taking it is a compare-and-set on
its epoch, and an append under an epoch starts by updating that row where the epoch is still
its own, which holds the row's lock until the append commits. A taking therefore waits for an
append in flight and then refuses it nothing, or the append waits for the taking and then finds
the epoch moved: either way no append of an earlier epoch commits after a taking.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    inspect,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from services.audit.log.catalogue import RECEIVED_EVENTS
from services.audit.log.facts import FLAGGED_DECISIONS, AuditFact
from services.audit.log.leaf import ADDED_FIELDS, ORDER, Content, leaf_bytes
from services.audit.log.lease import Lease, LeaseLostError, Takeover, may_take, taken
from services.audit.log.query import Page, RecordQuery, in_event_order, linked_by_delivery
from services.audit.log.record import AuditRecord
from services.audit.log.store import Consumed, PendingNodes, StoredCheckpoint
from shared.contracts.tlog.merkle import leaf_hash
from shared.plumbing.sql import answers, create_schema, create_store_engine

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

audit_offsets = Table(
    "audit_log_offsets",
    metadata,
    Column("kafka_topic", String(249), primary_key=True),
    Column("kafka_partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
)
"""Per partition the log reads, the offset to read next: written in the transaction that appends
what was read before it (services/audit/log/ingest.py seeks there), so a crash can neither skip
nor repeat a record."""

audit_lease = Table(
    "audit_log_lease",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),
)
"""The sequencer's lease (lease.py): one row, named SEQUENCER, once anyone took it."""

SEQUENCER = "sequencer"

_JSON_COLUMNS = ("fields", "reasons")


def _row_of(document: dict[str, Any]) -> dict[str, Any]:
    """A record's row, from its JSON document."""
    return {**document, **{name: json.dumps(document[name]) for name in _JSON_COLUMNS}}


def _from_row(row: Any) -> AuditRecord:
    stored = dict(row._mapping)
    return AuditRecord.model_validate(stored | {name: json.loads(stored[name]) for name in _JSON_COLUMNS})


class SqlAuditStore:
    """SQLAlchemy Core: SQLite by default (WAL, one transaction per batch), PostgreSQL for scale.
    Appends are serialised (a lock in this process plus the sequence primary key), since every
    leaf's place in the tree follows from the one before."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        create_schema(self._engine, metadata)
        _add_later_columns(self._engine)
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def append_batch(
        self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
    ) -> list[AuditRecord | None]:
        with self._lock, self._engine.begin() as connection:
            if epoch is not None:
                _hold_lease_at(connection, epoch)  # first: the size read below is then final

            def stored_node(level: int, index: int) -> bytes:
                return _node(connection, level, index)

            pending = PendingNodes(stored_node)
            size = _size(connection)
            stored: list[AuditRecord | None] = []
            rows: list[dict[str, Any]] = []
            seen = _seen(connection, facts)
            for fact in facts:
                provenance = (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset)
                if provenance in seen:
                    stored.append(None)
                    continue
                seen.add(provenance)
                record, document = AuditRecord.appended(size + len(rows) + 1, fact)
                pending.add(record.seq - 1, leaf_hash(leaf_bytes(document)))
                rows.append(_row_of(document))
                stored.append(record)
            if rows:
                connection.execute(audit_records.insert(), rows)
                connection.execute(
                    audit_nodes.insert(),
                    [{"level": lv, "idx": ix, "hash": node.hex()} for (lv, ix), node in pending.new.items()],
                )
            if consumed:
                _keep_offsets(connection, consumed)
            return stored

    def append(self, fact: AuditFact) -> AuditRecord | None:
        return self.append_batch([fact])[0]

    def consumed_offsets(self) -> dict[tuple[str, int], int]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(audit_offsets))
            return {(row.kafka_topic, int(row.kafka_partition)): int(row.next_offset) for row in rows}

    def size(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(select(func.coalesce(func.max(audit_records.c.seq), 0))).scalar_one()
            )

    def record(self, seq: int) -> AuditRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(audit_records).where(audit_records.c.seq == seq)).first()
        return _from_row(row) if row is not None else None

    def records_in_sequence(self, start: int = 1) -> Iterator[AuditRecord]:
        with self._engine.connect() as connection:
            statement = (
                select(audit_records).where(audit_records.c.seq >= start).order_by(audit_records.c.seq)
            )
            for row in connection.execution_options(yield_per=1000).execute(statement):
                yield _from_row(row)

    def leaves(self, start: int = 1) -> Iterator[tuple[int, Content]]:
        # Plain driver rows, no typed records: a million of them are read in a few seconds.
        statement = (
            select(*(audit_records.c[name] for name in ORDER))
            .where(audit_records.c.seq >= start)
            .order_by(audit_records.c.seq)
        )
        at_seq = ORDER.index("seq")
        parsed: dict[str, Any] = {}  # the same few field lists and reasons recur: parse each once

        def loads(text: str) -> Any:
            found = parsed.get(text)
            if found is None:
                if len(parsed) > 10_000:
                    parsed.clear()
                found = parsed[text] = json.loads(text)
            return found

        with self._engine.connect() as connection:
            for rows in _driver_rows(connection, statement, 2000):
                for row in rows:
                    content = dict(zip(ORDER, row, strict=True))  # in RFC 8785's order: leaf.fast
                    content["fields"] = loads(content["fields"])
                    content["reasons"] = loads(content["reasons"])
                    for name in ADDED_FIELDS:
                        if content[name] is None:
                            del content[name]  # in a leaf only when set
                    yield row[at_seq], content

    def records(self, query: RecordQuery | None = None) -> list[AuditRecord]:
        wanted = query or RecordQuery()
        columns = audit_records.c
        with self._engine.connect() as connection:
            statement = select(audit_records).where(*_conditions(wanted))
            found = {row.seq: _from_row(row) for row in connection.execute(statement)}
            if wanted.follows_deliveries:
                delivery_ids = {r.delivery_id for r in found.values() if r.delivery_id}
                if delivery_ids:
                    linked = select(audit_records).where(
                        columns.delivery_id.in_(delivery_ids), *_scope_and_integrity(wanted)
                    )
                    rows = (_from_row(row) for row in connection.execute(linked))
                    linked_by_delivery(found, wanted, rows)
        return in_event_order(found.values())

    def page(self, query: RecordQuery, page: Page) -> list[AuditRecord]:
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

    def nodes_at(self, level: int, start: int = 0) -> Iterator[tuple[int, bytes]]:
        statement = (
            select(audit_nodes.c.idx, audit_nodes.c.hash)
            .where(audit_nodes.c.level == level, audit_nodes.c.idx >= start)
            .order_by(audit_nodes.c.idx)
        )
        fromhex = bytes.fromhex
        with self._engine.connect() as connection:
            for rows in _driver_rows(connection, statement, 5000):
                yield from [(int(index), fromhex(node)) for index, node in rows]

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

    def checkpoints(self, after: int = 0) -> list[StoredCheckpoint]:
        statement = (
            select(audit_checkpoints)
            .where(audit_checkpoints.c.size > after)
            .order_by(audit_checkpoints.c.size)
        )
        with self._engine.connect() as connection:
            return [_checkpoint(row) for row in connection.execute(statement)]

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        statement = select(audit_checkpoints).where(audit_checkpoints.c.size == size)
        with self._engine.connect() as connection:
            row = connection.execute(statement).first()
        return _checkpoint(row) if row is not None else None

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        newest = self.recent_checkpoints(1)
        return newest[0] if newest else None

    def recent_checkpoints(self, count: int) -> list[StoredCheckpoint]:
        # the primary key's index, read backwards: as quick for a million checkpoints as for ten
        statement = select(audit_checkpoints).order_by(audit_checkpoints.c.size.desc()).limit(count)
        with self._engine.connect() as connection:
            return [_checkpoint(row) for row in connection.execute(statement)]

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

    def lease(self) -> Lease | None:
        with self._engine.connect() as connection:
            return _lease(connection)

    def take_lease(self, holder: str, now: float, seconds: float) -> Takeover | None:
        try:
            with self._lock, self._engine.begin() as connection:
                current = _lease(connection)
                if not may_take(current, holder, now):
                    return None
                new = taken(current, holder, now, seconds)
                row = {"holder": new.holder, "epoch": new.epoch, "expires_at": new.expires_at}
                if current is None:
                    connection.execute(audit_lease.insert().values(name=SEQUENCER, **row))
                else:
                    # compare-and-set on the row as read: a renewal or a taking meanwhile wins
                    columns = audit_lease.c
                    moved = connection.execute(
                        audit_lease.update()
                        .where(
                            columns.name == SEQUENCER,
                            columns.epoch == current.epoch,
                            columns.expires_at == current.expires_at,
                        )
                        .values(**row)
                    )
                    if moved.rowcount != 1:
                        return None
                return Takeover(new, current, _size(connection))
        except IntegrityError:
            return None  # another replica took the very first lease meanwhile

    def renew_lease(self, lease: Lease, now: float, seconds: float) -> Lease | None:
        renewed = lease.renewed(now, seconds)
        with self._engine.begin() as connection:
            columns = audit_lease.c
            moved = connection.execute(
                audit_lease.update()
                .where(columns.name == SEQUENCER, columns.epoch == lease.epoch)
                .values(expires_at=renewed.expires_at)
            )
            return renewed if moved.rowcount == 1 else None

    def release_lease(self, lease: Lease) -> None:
        with self._engine.begin() as connection:
            columns = audit_lease.c
            connection.execute(
                audit_lease.update()
                .where(columns.name == SEQUENCER, columns.epoch == lease.epoch)
                .values(expires_at=lease.released().expires_at)
            )


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


def _driver_rows(connection: Connection, statement: Select[Any], size: int) -> Iterator[list[Any]]:
    """`statement`'s rows as the driver's own tuples, `size` at a time, through a server-side
    cursor on PostgreSQL (a million rows are never in memory at once). None of the columns read
    so needs SQLAlchemy's result processing, and skipping it saves a microsecond a row where
    verification reads every record and node."""
    compiled = statement.compile(dialect=connection.dialect)
    parameters: Any = compiled.params
    if compiled.positional:
        parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    driver: Any = connection.connection.driver_connection
    postgresql = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name=f"audit_{uuid.uuid4().hex}") if postgresql else driver.cursor()
    try:
        cursor.execute(str(compiled), parameters)
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.size), bytes.fromhex(row.root_hash), row.note, row.issued_at)


def _size(connection: Connection) -> int:
    return int(connection.execute(select(func.coalesce(func.max(audit_records.c.seq), 0))).scalar_one())


def _lease(connection: Connection) -> Lease | None:
    row = connection.execute(select(audit_lease).where(audit_lease.c.name == SEQUENCER)).first()
    return Lease(row.holder, int(row.epoch), float(row.expires_at)) if row is not None else None


def _hold_lease_at(connection: Connection, epoch: int) -> None:
    """Lock the lease row for the rest of the transaction, if it is still at `epoch`."""
    columns = audit_lease.c
    held = connection.execute(
        audit_lease.update()
        .where(columns.name == SEQUENCER, columns.epoch == epoch)
        .values(epoch=columns.epoch)
    )
    if held.rowcount != 1:
        raise LeaseLostError(f"the sequencer's lease is no longer at epoch {epoch}")


def _node(connection: Connection, level: int, index: int) -> bytes:
    found = connection.execute(
        select(audit_nodes.c.hash).where((audit_nodes.c.level == level) & (audit_nodes.c.idx == index))
    ).first()
    if found is None:
        raise KeyError(f"no perfect node ({level}, {index})")
    return bytes.fromhex(found.hash)


def _seen(connection: Connection, facts: Sequence[AuditFact]) -> set[tuple[str, int, int]]:
    """The provenances among `facts` the log holds already: one index range per partition."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for fact in facts:
        key = (fact.kafka_topic, fact.kafka_partition)
        low, high = ranges.get(key, (fact.kafka_offset, fact.kafka_offset))
        ranges[key] = (min(low, fact.kafka_offset), max(high, fact.kafka_offset))
    columns = audit_records.c
    found: set[tuple[str, int, int]] = set()
    for (topic, partition), (low, high) in ranges.items():
        statement = select(columns.kafka_offset).where(
            columns.kafka_topic == topic,
            columns.kafka_partition == partition,
            columns.kafka_offset.between(low, high),
        )
        found |= {(topic, partition, int(offset)) for offset in connection.execute(statement).scalars()}
    return found


def _keep_offsets(connection: Connection, consumed: Consumed) -> None:
    """Each partition's next offset, never moved back (a late batch of an instance that lost the
    partition cannot rewind it)."""
    columns = audit_offsets.c
    topics = sorted({topic for topic, _ in consumed})
    held = {
        (row.kafka_topic, int(row.kafka_partition)): int(row.next_offset)
        for row in connection.execute(select(audit_offsets).where(columns.kafka_topic.in_(topics)))
    }
    moved = [
        {"t": topic, "p": partition, "o": offset}
        for (topic, partition), offset in consumed.items()
        if (topic, partition) in held and offset > held[(topic, partition)]
    ]
    if moved:
        connection.execute(
            audit_offsets.update()
            .where(columns.kafka_topic == bindparam("t"), columns.kafka_partition == bindparam("p"))
            .values(next_offset=bindparam("o")),
            moved,
        )
    new = [
        {"kafka_topic": topic, "kafka_partition": partition, "next_offset": offset}
        for (topic, partition), offset in consumed.items()
        if (topic, partition) not in held
    ]
    if new:
        connection.execute(audit_offsets.insert(), new)
