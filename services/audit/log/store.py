"""The audit log's storage port (`AuditStore`), and what every implementation shares.

Two implementations: `InMemoryAuditStore` (memory_store.py: fast tests, the reference) and
`SqlAuditStore` (sql_store.py: SQLite by default, WAL, one transaction per batch; PostgreSQL for
scale), both held to one contract suite (tests/integration/test_audit_store_contract.py). A
store keeps the records (the leaves), the perfect subtree hashes of their RFC 9162 Merkle tree
(written once, as appends complete them, so proofs read O(log n) stored nodes and nothing
rehashes the log), and the signed checkpoints and witnesses' cosignatures that commit to it.
Appends are idempotent on Kafka provenance (topic, partition, offset): a redelivered record is
not logged twice; and a batch keeps, in its own transaction, the offsets it was consumed up to,
where the intake resumes (services/audit/log/ingest.py). A store also keeps the sequencer's
lease (lease.py): the one replica that may append, fenced by the epoch each append names. Which
records to read is services.audit.log.query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import Content
from services.audit.log.lease import Lease, Takeover
from services.audit.log.query import Page, RecordQuery
from services.audit.log.record import AuditRecord
from shared.contracts.tlog.merkle import completed_nodes


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str  # the signed note, exactly as issued
    issued_at: str


Consumed = Mapping[tuple[str, int], int]
"""(topic, partition) -> the offset to read next there: what a batch of appended facts consumed."""


class AuditStore(Protocol):
    """The audit log's repository port: append-only records with their Merkle tree, and the
    checkpoints and cosignatures that commit to it. Every implementation passes
    tests/integration/test_audit_store_contract.py."""

    def append_batch(
        self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
    ) -> list[AuditRecord | None]:
        """Append facts in order, in one transaction with the offsets they were `consumed` up to
        (each partition's only moves forward); each stored record, or None for one whose
        provenance was seen (a redelivery is logged once). On failure nothing of it is kept.
        With `epoch` (the sequencer's), the same transaction first checks that the lease is still
        at that epoch and holds it there until it commits: LeaseLostError when another took it.
        Without, the caller is the only writer by construction (a tool, a test)."""

    def consumed_offsets(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition), the offset to read next: where the appended facts end."""

    def append(self, fact: AuditFact) -> AuditRecord | None:
        """Append one fact (see append_batch)."""

    def size(self) -> int:
        """Number of records (leaves)."""

    def record(self, seq: int) -> AuditRecord | None:
        """One record by its sequence number (leaf index + 1)."""

    def records_in_sequence(self, start: int = 1) -> Iterator[AuditRecord]:
        """Every record from `start` on, in sequence order (streamed)."""

    def leaves(self, start: int = 1) -> Iterator[tuple[int, Content]]:
        """(seq, leaf content) of every record from `start` on, in sequence order (streamed): the
        object each record's leaf bytes encode (leaf.leaf_content), read without making typed
        records. Verification reads the whole log this way."""

    def records(self, query: RecordQuery | None = None) -> list[AuditRecord]:
        """The records matching `query` (all when None), ordered by event time then sequence.
        Asked by signal, correlation id or subject, it adds the partner-side records
        (deliveries, notices, receipts) linked by the delivery ids of the records found."""

    def page(self, query: RecordQuery, page: Page) -> list[AuditRecord]:
        """One page of the records matching `query` exactly, or with `page.linked` of what
        `records(query)` answers (the linked partner-side records too): see Page."""

    def count(self, query: RecordQuery) -> int:
        """How many records match `query` exactly (what paging through it visits)."""

    def perfect_node(self, level: int, index: int) -> bytes:
        """A stored perfect subtree hash (shared.contracts.tlog.merkle.NodeReader); KeyError if absent."""

    def nodes_at(self, level: int, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """The stored nodes of one level from index `start` on, by index (verification compares
        them)."""

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a checkpoint the log issued (one per size; the same size again is ignored)."""

    def checkpoints(self, after: int = 0) -> list[StoredCheckpoint]:
        """The stored checkpoints larger than `after` (all by default), smallest size first."""

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        """The stored checkpoint of `size`, if the log issued one (looked up, not listed)."""

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The newest (largest) stored checkpoint: what is served and proven against."""

    def recent_checkpoints(self, count: int) -> list[StoredCheckpoint]:
        """The `count` newest stored checkpoints, newest first."""

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        """Keep (or replace) a witness's cosignature line on the checkpoint of `size`."""

    def cosignatures(self, size: int) -> dict[str, str]:
        """The cosignature lines on the checkpoint of `size`, by witness."""

    def ping(self) -> bool:
        """The store answers."""

    def lease(self) -> Lease | None:
        """The sequencer's lease as stored; None before anyone took it."""

    def take_lease(self, holder: str, now: float, seconds: float) -> Takeover | None:
        """In one short transaction: take the lease for `holder` until `now + seconds`, with the
        next epoch, when lease.may_take allows it and nobody took it meanwhile; None otherwise.
        The takeover's size is final: no append of an earlier epoch commits after it."""

    def renew_lease(self, lease: Lease, now: float, seconds: float) -> Lease | None:
        """Extend `lease` to `now + seconds` while it is still at its epoch; None: it was taken."""

    def release_lease(self, lease: Lease) -> None:
        """Let `lease` expire now, if it is still at its epoch (a clean stop hands over at once)."""


def every_page(store: AuditStore, query: RecordQuery, size: int = 1000) -> Iterator[AuditRecord]:
    """Every record matching `query`, oldest first, read a page at a time (an export of the
    whole log never sits in memory)."""
    after: tuple[str, int] | None = None
    while True:
        records = store.page(query, Page(limit=size, after=after))
        yield from records
        if len(records) < size:
            return
        after = (records[-1].event_time, records[-1].seq)


class PendingNodes:
    """Nodes of the batch being appended, over what the store already holds."""

    def __init__(self, stored: Callable[[int, int], bytes]) -> None:
        self.new: dict[tuple[int, int], bytes] = {}
        self._stored = stored

    def perfect_node(self, level: int, index: int) -> bytes:
        return self.new.get((level, index)) or self._stored(level, index)

    def add(self, leaf_index: int, leaf: bytes) -> None:
        for level, index, node in completed_nodes(leaf_index, leaf, self):
            self.new[(level, index)] = node
