"""The signal ledger: which signal ids were accepted, from which intake record.

It makes intake idempotent: a signal id is accepted once. The ledger is written inside the
intake transaction's transform, before the Kafka transaction commits; if that transaction
aborts, the same intake record (same provenance) is read again and may pass again, while any
other record with that signal id is a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.sql import answers, create_store_engine


@dataclass(frozen=True)
class LedgerEntry:
    signal_id: str
    provenance: str
    subject_pseudonym: str
    accepted_at: datetime


class SignalLedger(Protocol):
    def record(self, entry: LedgerEntry) -> LedgerEntry | None:
        """Record an acceptance. Returns None when recorded (or already recorded with the same
        provenance: a redelivery), else the earlier entry: this one is a duplicate."""

    def find(self, signal_id: str) -> LedgerEntry | None:
        """The acceptance of a signal id, if any."""

    def ping(self) -> bool:
        """The ledger answers."""


metadata = MetaData()
accepted_signals = Table(
    "accepted_signals",
    metadata,
    Column("signal_id", String(36), primary_key=True),
    Column("provenance", String(300), nullable=False),
    Column("subject_pseudonym", String(64), nullable=False),
    Column("accepted_at", String(40), nullable=False),
)


class SqlSignalLedger:
    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        metadata.create_all(self._engine)

    def record(self, entry: LedgerEntry) -> LedgerEntry | None:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(accepted_signals).values(
                        signal_id=entry.signal_id,
                        provenance=entry.provenance,
                        subject_pseudonym=entry.subject_pseudonym,
                        accepted_at=entry.accepted_at.isoformat(),
                    )
                )
            return None
        except IntegrityError:
            earlier = self.find(entry.signal_id)
            if earlier is None or earlier.provenance == entry.provenance:
                return None
            return earlier

    def find(self, signal_id: str) -> LedgerEntry | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(accepted_signals).where(accepted_signals.c.signal_id == signal_id)
            ).first()
        if row is None:
            return None
        return LedgerEntry(
            row.signal_id, row.provenance, row.subject_pseudonym, datetime.fromisoformat(row.accepted_at)
        )

    def ping(self) -> bool:
        return answers(self._engine)
