"""The signal ledger's contract, on SQLite and PostgreSQL: one acceptance per signal id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from services.signals.ledger import LedgerEntry, SqlSignalLedger, accepted_signals

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entry(signal_id: str = "s-1", provenance: str = "intake:0:1") -> LedgerEntry:
    return LedgerEntry(signal_id, provenance, "a" * 32, NOW, "gm0363")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'signals.db'}"
        return
    postgres: str = request.getfixturevalue("postgres_url")
    ledger = SqlSignalLedger(postgres)
    with ledger._engine.begin() as connection:
        connection.execute(accepted_signals.delete())
    yield postgres


def test_a_flushed_acceptance_is_found_and_survives_a_new_ledger(url: str) -> None:
    ledger = SqlSignalLedger(url)
    assert ledger.record(entry()) is None
    assert ledger.find("s-1") is None  # pending until the batch commits
    ledger.flush()
    assert SqlSignalLedger(url).find("s-1") == entry()


def test_the_same_signal_id_from_another_record_is_a_duplicate_pending_or_flushed(url: str) -> None:
    ledger = SqlSignalLedger(url)
    ledger.record(entry())
    assert ledger.record(entry(provenance="intake:0:2")) == entry()
    ledger.flush()
    assert ledger.record(entry(provenance="intake:0:3")) == entry()


def test_the_same_record_read_again_is_no_duplicate(url: str) -> None:
    ledger = SqlSignalLedger(url)
    ledger.record(entry())
    ledger.flush()
    assert ledger.record(entry()) is None


def test_a_discarded_batch_leaves_nothing_behind(url: str) -> None:
    ledger = SqlSignalLedger(url)
    ledger.record(entry())
    ledger.discard()
    ledger.flush()
    assert ledger.find("s-1") is None
    assert ledger.record(entry(provenance="intake:0:9")) is None


def test_a_flush_that_collides_with_another_writer_fails_whole(url: str) -> None:
    mine, theirs = SqlSignalLedger(url), SqlSignalLedger(url)
    mine.record(entry("s-1"))
    mine.record(entry("s-2"))
    theirs.record(entry("s-2", provenance="intake:1:1"))
    theirs.flush()
    with pytest.raises(IntegrityError):
        mine.flush()
    assert mine.find("s-1") is None  # all or none
    mine.discard()
    assert mine.record(entry("s-2")) == entry("s-2", provenance="intake:1:1")
