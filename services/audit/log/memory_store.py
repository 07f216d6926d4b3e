"""An audit log kept in this process: for fast tests, and the reference the others are held to.
Its records are frozen, so it hands out the ones it keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import Content, leaf_bytes, leaf_content
from services.audit.log.lease import Lease, LeaseLostError, Takeover, may_take, taken
from services.audit.log.query import Page, RecordQuery, in_event_order, linked_by_delivery, matches, paged
from services.audit.log.record import AuditRecord
from services.audit.log.store import Consumed, PendingNodes, StoredCheckpoint
from shared.contracts.tlog.merkle import leaf_hash


class InMemoryAuditStore:
    """The whole log in this process: for fast tests, and the reference the others are held to."""

    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._provenance: set[tuple[str, int, int]] = set()
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._checkpoints: dict[int, StoredCheckpoint] = {}
        self._cosignatures: dict[int, dict[str, str]] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._lease: Lease | None = None
        self._lock = threading.Lock()

    def append_batch(
        self, facts: Sequence[AuditFact], consumed: Consumed | None = None, epoch: int | None = None
    ) -> list[AuditRecord | None]:
        with self._lock:
            if epoch is not None and (self._lease is None or self._lease.epoch != epoch):
                raise LeaseLostError(f"the sequencer's lease is no longer at epoch {epoch}")
            pending = PendingNodes(self.perfect_node)
            stored: list[AuditRecord | None] = []
            records: list[AuditRecord] = []
            seen = set(self._provenance)
            for fact in facts:
                provenance = (fact.kafka_topic, fact.kafka_partition, fact.kafka_offset)
                if provenance in seen:
                    stored.append(None)
                    continue
                seen.add(provenance)
                record, document = AuditRecord.appended(len(self._records) + len(records) + 1, fact)
                pending.add(record.seq - 1, leaf_hash(leaf_bytes(document)))
                records.append(record)
                stored.append(record)
            self._records.extend(records)
            self._provenance = seen
            self._nodes.update(pending.new)
            for partition, offset in (consumed or {}).items():
                self._offsets[partition] = max(offset, self._offsets.get(partition, offset))
            return stored

    def consumed_offsets(self) -> dict[tuple[str, int], int]:
        return dict(self._offsets)

    def append(self, fact: AuditFact) -> AuditRecord | None:
        return self.append_batch([fact])[0]

    def size(self) -> int:
        return len(self._records)

    def record(self, seq: int) -> AuditRecord | None:
        return self._records[seq - 1] if 1 <= seq <= len(self._records) else None

    def records_in_sequence(self, start: int = 1) -> Iterator[AuditRecord]:
        yield from self._records[max(start, 1) - 1 :]

    def leaves(self, start: int = 1) -> Iterator[tuple[int, Content]]:
        for record in self._records[max(start, 1) - 1 :]:
            yield record.seq, leaf_content(record)

    def records(self, query: RecordQuery | None = None) -> list[AuditRecord]:
        wanted = query or RecordQuery()
        found = {r.seq: r for r in self._records if matches(r, wanted)}
        if wanted.follows_deliveries:
            linked_by_delivery(found, wanted, self._records)
        return in_event_order(found.values())

    def page(self, query: RecordQuery, page: Page) -> list[AuditRecord]:
        if page.linked and query.follows_deliveries:
            return paged(self.records(query), page)
        return paged((r for r in self._records if matches(r, query)), page)

    def count(self, query: RecordQuery) -> int:
        return sum(1 for r in self._records if matches(r, query))

    def perfect_node(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise KeyError(f"no perfect node ({level}, {index})") from None

    def nodes_at(self, level: int, start: int = 0) -> Iterator[tuple[int, bytes]]:
        yield from sorted((i, node) for (at, i), node in self._nodes.items() if at == level and i >= start)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self._checkpoints.setdefault(checkpoint.size, checkpoint)

    def checkpoints(self, after: int = 0) -> list[StoredCheckpoint]:
        return [self._checkpoints[size] for size in sorted(self._checkpoints) if size > after]

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoints.get(size)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._checkpoints[max(self._checkpoints)] if self._checkpoints else None

    def recent_checkpoints(self, count: int) -> list[StoredCheckpoint]:
        return [self._checkpoints[size] for size in sorted(self._checkpoints, reverse=True)[:count]]

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        self._cosignatures.setdefault(size, {})[witness] = line

    def cosignatures(self, size: int) -> dict[str, str]:
        return dict(self._cosignatures.get(size, {}))

    def ping(self) -> bool:
        return True

    def lease(self) -> Lease | None:
        return self._lease

    def take_lease(self, holder: str, now: float, seconds: float) -> Takeover | None:
        with self._lock:
            current = self._lease
            if not may_take(current, holder, now):
                return None
            self._lease = taken(current, holder, now, seconds)
            return Takeover(self._lease, current, len(self._records))

    def renew_lease(self, lease: Lease, now: float, seconds: float) -> Lease | None:
        with self._lock:
            if self._lease is None or self._lease.epoch != lease.epoch:
                return None
            self._lease = lease.renewed(now, seconds)
            return self._lease

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            if self._lease is not None and self._lease.epoch == lease.epoch:
                self._lease = lease.released()
