"""What the broker wrote: record batches per topic, read from its log segment files.

A producer sends a produce request per partition leader it has something for; each request
carries at most one record batch per partition, and the broker appends that batch to the
partition's log as it came. So the batches appended to a partition count the produce requests
that wrote to it, and batches per signal per topic is a direct measure of "one produce request
per record" (a request that writes to several partitions of a topic counts once per partition:
batches are an upper bound on the requests themselves). Transaction markers (control batches,
one per partition a transaction touched) are the broker's own writes, counted apart. Offset
commits (`__consumer_offsets`) and the transaction coordinator's state changes
(`__transaction_state`) are batches too, written by the broker for OffsetCommit,
TxnOffsetCommit, AddPartitionsToTxn and EndTxn requests.

Only for a broker this process started (its log.dirs is a folder here); the segment files are
read-only, as they are (a batch still being written is left for the next read). Record batch
format v2: https://kafka.apache.org/documentation/#recordbatch
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import number

_HEADER = struct.Struct(">qi")  # baseOffset, batchLength (bytes after this field)
_FIELDS = struct.Struct(">ibIhiqqqhii")  # partitionLeaderEpoch .. recordsCount
_TRANSACTIONAL, _CONTROL = 0x10, 0x20
_PARTITION_DIR = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)$")


@dataclass(frozen=True)
class Batches:
    """What one partition's log holds: data batches, their records, transactional ones among
    them, and control batches (transaction markers)."""

    batches: int = 0
    records: int = 0
    transactional: int = 0
    control: int = 0

    def __add__(self, other: Batches) -> Batches:
        return Batches(
            self.batches + other.batches,
            self.records + other.records,
            self.transactional + other.transactional,
            self.control + other.control,
        )

    def __sub__(self, other: Batches) -> Batches:
        return Batches(
            self.batches - other.batches,
            self.records - other.records,
            self.transactional - other.transactional,
            self.control - other.control,
        )


Snapshot = dict[tuple[str, int], Batches]


def scan_segment(path: Path) -> Batches:
    """Count the complete batches of one .log segment file."""
    counts = Batches()
    with path.open("rb") as segment:
        data = segment.read()
    position, size = 0, len(data)
    while position + _HEADER.size + _FIELDS.size <= size:
        _, length = _HEADER.unpack_from(data, position)
        end = position + _HEADER.size + length
        if length <= 0 or end > size:
            break  # preallocated zeroes, or a batch being appended right now
        fields = _FIELDS.unpack_from(data, position + _HEADER.size)
        attributes, records = fields[3], fields[10]
        if attributes & _CONTROL:
            counts += Batches(control=1)
        else:
            counts += Batches(1, records, 1 if attributes & _TRANSACTIONAL else 0)
        position = end
    return counts


def snapshot(log_dir: Path) -> Snapshot:
    """Batches per (topic, partition) in every segment under the broker's log.dirs folder."""
    counts: Snapshot = {}
    for folder in sorted(log_dir.iterdir()) if log_dir.is_dir() else ():
        match = _PARTITION_DIR.match(folder.name)
        if not match or not folder.is_dir():
            continue
        total = Batches()
        for segment in sorted(folder.glob("*.log")):
            try:
                total += scan_segment(segment)
            except OSError:
                continue  # a segment deleted (retention, compaction) while we read
        counts[(match["topic"], int(match["partition"]))] = total
    return counts


def by_topic(before: Snapshot, after: Snapshot, prefix: str) -> dict[str, Batches]:
    """What was appended between two snapshots, per topic: the prefix taken off, every partner
    topic as `partner.*.signals.v1`, the broker's internal topics by their own names. Topics
    of other runs (another prefix) are left out."""
    grouped: dict[str, Batches] = {}
    for (topic, partition), now in after.items():
        if topic.startswith("__"):
            name = topic
        elif topic.startswith(prefix):
            name = re.sub(r"^partner\.[a-z0-9-]+\.", "partner.*.", topic.removeprefix(prefix))
        else:
            continue
        added = now - before.get((topic, partition), Batches())
        if added != Batches():
            grouped[name] = grouped.get(name, Batches()) + added
    return dict(sorted(grouped.items()))


def per_unit(grouped: dict[str, Batches], units: int) -> dict[str, dict[str, Any]]:
    """The counts per topic as JSON, with batches per unit (a signal, a relayed record)."""
    return {
        topic: {
            "records": counts.records,
            "batches": counts.batches,
            "transactional_batches": counts.transactional,
            "control_batches": counts.control,
            "batches_per_unit": counts.batches / units if units else None,
            "records_per_batch": counts.records / counts.batches if counts.batches else None,
        }
        for topic, counts in grouped.items()
    }


def produce_batches(grouped: dict[str, Batches], topics: Iterable[str] | None = None) -> int:
    """Data batches appended to the run's own topics (not the broker's internal ones): what
    the producers' produce requests wrote."""
    wanted = set(topics) if topics is not None else None
    return sum(
        counts.batches
        for topic, counts in grouped.items()
        if not topic.startswith("__") and (wanted is None or topic in wanted)
    )


def batch_columns(unit: str) -> list[str]:
    """The columns of `batch_rows`, per `unit` (signal, record, fact)."""
    return ["topic", "records", "batches", f"batches/{unit}", "records/batch", "txn markers"]


def batch_rows(counts: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per topic of `appended`'s counts, then the run's own topics (not `__...`) summed."""
    rows = [
        [
            topic,
            f"{c['records']:,}",
            f"{c['batches']:,}",
            number(c["batches_per_unit"], "{:.2f}"),
            number(c["records_per_batch"], "{:.1f}"),
            f"{c['control_batches']:,}",
        ]
        for topic, c in counts.items()
    ]
    own = [c for topic, c in counts.items() if not topic.startswith("__")]
    units = [c["batches"] / c["batches_per_unit"] for c in own if c["batches_per_unit"]]
    if own and units:
        batches = sum(c["batches"] for c in own)
        rows.append(
            [
                "all produce batches (the run's topics)",
                f"{sum(c['records'] for c in own):,}",
                f"{batches:,}",
                f"{batches / units[0]:.2f}",
                "",
                f"{sum(c['control_batches'] for c in own):,}",
            ]
        )
    return rows
