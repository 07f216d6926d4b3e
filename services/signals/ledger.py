"""The signal ledger: which signal ids were accepted, from which intake record, for whom.

It makes intake idempotent: a signal id is accepted once. It remembers which municipality
submitted it, so a duplicate is answered with the first result only to that municipality.
Acceptances are recorded while a Kafka transaction's batch is transformed and written to the
database in one go (`flush`) just before that transaction commits: one durable write per
batch, not per signal. The same database transaction writes the data keys the batch made
(services/signals/keystore.py `KeyWrites`; the key store and the ledger share one database,
SC_SIGNALS_DATABASE_URL). If the transaction aborts, `discard` forgets them, and the same intake
record (same provenance) is read again and may pass again, while any other record with that
signal id is a duplicate. A batch looks its signal ids up in one read (`find_many`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine

from services.signals.keystore import LOOKUP_CHUNK, NO_KEY_WRITES, KeyWrites, write_keys
from shared.plumbing.metrics import timed
from shared.plumbing.sql import answers, create_schema, create_store_engine


@dataclass(frozen=True)
class LedgerEntry:
    signal_id: str
    provenance: str
    subject_pseudonym: str
    accepted_at: datetime
    municipality: str  # who submitted it: the only one who may see this result again


class SignalLedger(Protocol):
    def record(
        self, entry: LedgerEntry, looked_up: Mapping[str, LedgerEntry] | None = None
    ) -> LedgerEntry | None:
        """Record an acceptance (pending until `flush`). Returns None when recorded (or already
        recorded with the same provenance: a redelivery), else the earlier entry: a duplicate.
        `looked_up`: what `find_many` found for a batch of signal ids that includes this one
        (then the database is not asked again); None: look it up now."""

    def find_many(self, signal_ids: Collection[str]) -> dict[str, LedgerEntry]:
        """The acceptances of those signal ids that have one, in one read (pending ones not)."""

    def flush(self, keys: KeyWrites = NO_KEY_WRITES) -> None:
        """Write the pending acceptances and `keys` (the batch's new data keys and key
        publications) durably, in one transaction: all or none; raises if that fails."""

    def discard(self) -> None:
        """Forget the pending acceptances (their Kafka transaction aborted)."""

    def find(self, signal_id: str) -> LedgerEntry | None:
        """The acceptance of a signal id, if any."""

    def signalled_by(self, subject_pseudonym: str) -> frozenset[str]:
        """The municipalities whose signals about this subject were accepted."""

    def ping(self) -> bool:
        """The ledger answers."""


metadata = MetaData()
accepted_signals = Table(
    "accepted_signals",
    metadata,
    Column("signal_id", String(36), primary_key=True),
    Column("provenance", String(300), nullable=False),
    Column("subject_pseudonym", String(64), nullable=False, index=True),
    Column("accepted_at", String(40), nullable=False),
    Column("municipality", String(20), nullable=False),
)


class SqlSignalLedger:
    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        create_schema(self._engine, metadata)
        self._pending: dict[str, LedgerEntry] = {}

    def record(
        self, entry: LedgerEntry, looked_up: Mapping[str, LedgerEntry] | None = None
    ) -> LedgerEntry | None:
        earlier = self._pending.get(entry.signal_id)
        if earlier is None:
            earlier = looked_up.get(entry.signal_id) if looked_up is not None else self.find(entry.signal_id)
        if earlier is not None:
            return None if earlier.provenance == entry.provenance else earlier
        self._pending[entry.signal_id] = entry
        return None

    @timed("ledger", "find_many")
    def find_many(self, signal_ids: Collection[str]) -> dict[str, LedgerEntry]:
        ids = sorted(set(signal_ids))
        found: dict[str, LedgerEntry] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start : start + LOOKUP_CHUNK]
                for row in connection.execute(
                    select(accepted_signals).where(accepted_signals.c.signal_id.in_(chunk))
                ):
                    found[row.signal_id] = _entry(row)
        return found

    @timed("ledger", "flush")
    def flush(self, keys: KeyWrites = NO_KEY_WRITES) -> None:
        if not self._pending and not keys:
            return
        rows = [
            {
                "signal_id": entry.signal_id,
                "provenance": entry.provenance,
                "subject_pseudonym": entry.subject_pseudonym,
                "accepted_at": entry.accepted_at.isoformat(),
                "municipality": entry.municipality,
            }
            for entry in self._pending.values()
        ]
        # A concurrent writer (another replica) raises IntegrityError here: the batch aborts,
        # is read again, and `record` then finds the other writer's entry (or its key).
        with self._engine.begin() as connection:
            write_keys(connection, keys)
            if rows:
                connection.execute(insert(accepted_signals), rows)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()

    @timed("ledger", "find")
    def find(self, signal_id: str) -> LedgerEntry | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(accepted_signals).where(accepted_signals.c.signal_id == signal_id)
            ).first()
        return None if row is None else _entry(row)

    @timed("ledger", "signalled_by")
    def signalled_by(self, subject_pseudonym: str) -> frozenset[str]:
        statement = (
            select(accepted_signals.c.municipality)
            .where(accepted_signals.c.subject_pseudonym == subject_pseudonym)
            .distinct()
        )
        with self._engine.connect() as connection:
            return frozenset(connection.execute(statement).scalars())

    def ping(self) -> bool:
        return answers(self._engine)


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        row.signal_id,
        row.provenance,
        row.subject_pseudonym,
        datetime.fromisoformat(row.accepted_at),
        row.municipality,
    )
