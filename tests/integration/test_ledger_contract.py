"""The signal ledger's contract, on SQLite and PostgreSQL: one acceptance per signal id; a batch
looks its signal ids up in one read and writes its acceptances and new data keys in one
transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from services.signals.keystore import KeyWrites, SqlKeyStore, StoredKey, subject_keys
from services.signals.ledger import LedgerEntry, SqlSignalLedger, accepted_signals

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEK = bytes(range(32))


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
    with SqlKeyStore(postgres, KEK).engine.begin() as connection:
        connection.execute(subject_keys.delete())
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


def test_a_batch_lookup_finds_the_flushed_acceptances_among_its_ids(url: str) -> None:
    ledger = SqlSignalLedger(url)
    ledger.record(entry("s-1"))
    ledger.record(entry("s-2", provenance="intake:0:2"))
    ledger.flush()
    ledger.record(entry("s-3", provenance="intake:0:3"))  # pending: not in the database yet
    assert ledger.find_many(["s-1", "s-3", "s-9", "s-1"]) == {"s-1": entry("s-1")}
    assert ledger.find_many([]) == {}


def test_recording_with_a_batch_lookup_answers_as_recording_alone(url: str) -> None:
    ledger = SqlSignalLedger(url)
    ledger.record(entry())
    ledger.flush()
    looked_up = ledger.find_many(["s-1", "s-2"])
    assert ledger.record(entry(), looked_up) is None  # the same record read again
    assert ledger.record(entry(provenance="intake:0:2"), looked_up) == entry()  # a duplicate
    assert ledger.record(entry("s-2", provenance="intake:0:3"), looked_up) is None  # new
    # a pending acceptance of the batch counts too, though the lookup predates it
    assert ledger.record(entry("s-2", provenance="intake:0:4"), looked_up) == entry(
        "s-2", provenance="intake:0:3"
    )


def test_a_flush_writes_the_batchs_new_data_keys_in_the_same_transaction(url: str) -> None:
    keys, ledger = SqlKeyStore(url, KEK), SqlSignalLedger(url)
    made = keys.new_key("gm0363", "a" * 32)
    ledger.record(entry())
    ledger.flush(KeyWrites(created=(made,)))
    assert ledger.find("s-1") == entry()
    assert keys.look_up([made.pair]) == {made.pair: StoredKey(made.key, published=False)}
    # A batch without acceptances may still mark the keys it knows published.
    ledger.flush(KeyWrites(published=(made.pair,)))
    assert keys.look_up([made.pair]) == {made.pair: StoredKey(made.key, published=True)}


def test_a_flush_whose_new_key_collides_writes_no_acceptance_either(url: str) -> None:
    keys, ledger = SqlKeyStore(url, KEK), SqlSignalLedger(url)
    theirs = keys.data_key("gm0363", "a" * 32)  # another writer made the pair's key first
    ledger.record(entry())
    with pytest.raises(IntegrityError):
        ledger.flush(KeyWrites(created=(keys.new_key("gm0363", "a" * 32),)))
    assert ledger.find("s-1") is None  # all or none
    assert keys.find("gm0363", "a" * 32) == theirs
    ledger.discard()
