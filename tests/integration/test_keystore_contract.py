"""One contract for every data-key store backend: SQLite (embedded) and PostgreSQL (scale-out).

A data key belongs to one subject and one providing municipality (ADR 0009)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from services.signals import keystore
from services.signals.keystore import (
    ALL_MUNICIPALITIES,
    KeyStore,
    KeyWrites,
    OutdatedKeyStoreError,
    SqlKeyStore,
    StoredKey,
    SubjectErasedError,
    subject_keys,
    write_keys,
)
from shared.contracts.crypto.datakeys import DATA_KEY_BYTES, DecryptionError

KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))
AMS, OTHER = "gm0363", "gm0518"
SUBJECT = "0123456789abcdef0123456789abcdef"
OTHER_SUBJECT = "fedcba9876543210fedcba9876543210"

OpenStore = Callable[[bytes], SqlKeyStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens stores on one fresh database (emptied first on PostgreSQL), with a KEK of choice."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened: list[SqlKeyStore] = []

    def open_with(kek: bytes) -> SqlKeyStore:
        store = SqlKeyStore(url, kek)
        opened.append(store)
        return store

    with open_with(KEK).engine.begin() as connection:
        connection.execute(subject_keys.delete())
    yield open_with
    for store in opened:
        store.engine.dispose()


@pytest.fixture
def store(open_store: OpenStore) -> SqlKeyStore:
    return open_store(KEK)


def stored_column(store: SqlKeyStore, subject: str, municipality: str = AMS) -> bytes | None:
    with store.engine.connect() as connection:
        raw = connection.execute(
            select(subject_keys.c.wrapped_key).where(
                subject_keys.c.subject == subject, subject_keys.c.municipality == municipality
            )
        ).scalar_one()
    return None if raw is None else bytes(raw)


def test_the_sql_store_is_a_key_store_and_answers(store: SqlKeyStore) -> None:
    port: KeyStore = store
    assert port.ping()


def test_get_or_create_returns_the_same_key_twice(store: SqlKeyStore) -> None:
    key = store.data_key(AMS, SUBJECT)
    assert len(key) == DATA_KEY_BYTES
    assert store.data_key(AMS, SUBJECT) == key
    assert store.find(AMS, SUBJECT) == key


def test_another_process_reads_the_same_key(open_store: OpenStore) -> None:
    key = open_store(KEK).data_key(AMS, SUBJECT)
    assert open_store(KEK).data_key(AMS, SUBJECT) == key


def test_different_subjects_get_different_keys(store: SqlKeyStore) -> None:
    assert store.data_key(AMS, SUBJECT) != store.data_key(AMS, OTHER_SUBJECT)


def test_find_of_an_unknown_subject_is_none_and_creates_nothing(store: SqlKeyStore) -> None:
    assert store.find(AMS, SUBJECT) is None
    assert store.find(AMS, SUBJECT) is None
    assert not store.is_erased(AMS, SUBJECT)


def test_destroy_erases_the_key_for_good(store: SqlKeyStore) -> None:
    store.data_key(AMS, SUBJECT)
    # The first destroy finds a key and removes it.
    assert store.destroy(AMS, SUBJECT) is True
    assert store.find(AMS, SUBJECT) is None
    assert store.is_erased(AMS, SUBJECT)
    # No new key is issued for an erased subject.
    with pytest.raises(SubjectErasedError) as caught:
        store.data_key(AMS, SUBJECT)
    assert caught.value.subject == SUBJECT and caught.value.municipality == AMS
    # Destroying again finds nothing to destroy.
    assert store.destroy(AMS, SUBJECT) is False
    assert store.is_erased(AMS, SUBJECT)


def test_destroy_leaves_a_tombstone_without_the_key(store: SqlKeyStore) -> None:
    store.data_key(AMS, SUBJECT)
    store.destroy(AMS, SUBJECT)
    with store.engine.connect() as connection:
        row = connection.execute(select(subject_keys).where(subject_keys.c.subject == SUBJECT)).one()
    assert row.wrapped_key is None
    assert row.erased_at is not None and row.created_at is not None


def test_destroying_a_subject_that_never_had_a_key_still_bars_it(store: SqlKeyStore) -> None:
    assert store.destroy(AMS, SUBJECT) is False
    assert store.is_erased(AMS, SUBJECT)
    with pytest.raises(SubjectErasedError):
        store.data_key(AMS, SUBJECT)


def test_destroying_one_subject_leaves_the_others(store: SqlKeyStore) -> None:
    other = store.data_key(AMS, OTHER_SUBJECT)
    store.data_key(AMS, SUBJECT)
    store.destroy(AMS, SUBJECT)
    assert store.find(AMS, OTHER_SUBJECT) == other
    assert not store.is_erased(AMS, OTHER_SUBJECT)


def test_each_municipality_has_its_own_key_of_a_subject(store: SqlKeyStore) -> None:
    mine = store.data_key(AMS, SUBJECT)
    theirs = store.data_key(OTHER, SUBJECT)
    assert mine != theirs
    assert store.find(AMS, SUBJECT) == mine and store.find(OTHER, SUBJECT) == theirs


def test_a_municipalitys_erasure_leaves_anothers_key_of_the_subject(store: SqlKeyStore) -> None:
    mine = store.data_key(AMS, SUBJECT)
    store.data_key(OTHER, SUBJECT)
    # The second municipality erases what it provided, and only that.
    assert store.destroy(OTHER, SUBJECT) is True
    assert store.find(OTHER, SUBJECT) is None and store.is_erased(OTHER, SUBJECT)
    assert store.find(AMS, SUBJECT) == mine and not store.is_erased(AMS, SUBJECT)
    assert store.data_key(AMS, SUBJECT) == mine
    with pytest.raises(SubjectErasedError):
        store.data_key(OTHER, SUBJECT)


def test_the_platforms_erasure_destroys_every_municipalitys_key_and_bars_new_ones(
    store: SqlKeyStore,
) -> None:
    other_subject = store.data_key(AMS, OTHER_SUBJECT)
    store.data_key(AMS, SUBJECT)
    store.data_key(OTHER, SUBJECT)
    assert store.destroy_subject(SUBJECT) == ((AMS, OTHER), True)
    for municipality in (AMS, OTHER, "gm0599"):  # gm0599 never had a key: it gets none either
        assert store.find(municipality, SUBJECT) is None and store.is_erased(municipality, SUBJECT)
        with pytest.raises(SubjectErasedError):
            store.data_key(municipality, SUBJECT)
    assert store.find(AMS, OTHER_SUBJECT) == other_subject
    # Idempotent: the same municipalities, no live key left.
    assert store.destroy_subject(SUBJECT) == ((AMS, OTHER), False)


def test_a_wrapped_key_moved_to_another_municipality_does_not_unwrap(store: SqlKeyStore) -> None:
    store.data_key(AMS, SUBJECT)
    store.data_key(OTHER, SUBJECT)
    with store.engine.begin() as connection:
        connection.execute(
            subject_keys.update()
            .where(subject_keys.c.subject == SUBJECT, subject_keys.c.municipality == OTHER)
            .values(wrapped_key=stored_column(store, SUBJECT, AMS))
        )
    with pytest.raises(DecryptionError):
        store.find(OTHER, SUBJECT)


def test_the_database_never_holds_the_plain_key(store: SqlKeyStore) -> None:
    key = store.data_key(AMS, SUBJECT)
    stored = stored_column(store, SUBJECT)
    assert stored is not None
    assert key not in stored
    assert len(stored) == 1 + 12 + DATA_KEY_BYTES + 16


def test_a_store_with_another_kek_cannot_read_the_keys(open_store: OpenStore) -> None:
    open_store(KEK).data_key(AMS, SUBJECT)
    intruder = open_store(OTHER_KEK)
    with pytest.raises(DecryptionError):
        intruder.find(AMS, SUBJECT)
    with pytest.raises(DecryptionError):
        intruder.data_key(AMS, SUBJECT)


def test_a_wrapped_key_moved_to_another_subject_does_not_unwrap(store: SqlKeyStore) -> None:
    store.data_key(AMS, SUBJECT)
    store.data_key(AMS, OTHER_SUBJECT)
    with store.engine.begin() as connection:
        connection.execute(
            subject_keys.update()
            .where(subject_keys.c.subject == OTHER_SUBJECT)
            .values(wrapped_key=stored_column(store, SUBJECT))
        )
    with pytest.raises(DecryptionError):
        store.find(AMS, OTHER_SUBJECT)


def test_concurrent_first_use_from_eight_threads_yields_one_key(open_store: OpenStore) -> None:
    store = open_store(KEK)
    start = threading.Barrier(8)

    def first_use(_: int) -> bytes:
        # All threads ask at once, so they all find no key and race to create one.
        start.wait()
        return store.data_key(AMS, SUBJECT)

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(first_use, range(8)))
    assert len(set(keys)) == 1
    assert store.find(AMS, SUBJECT) == keys[0]


def test_concurrent_stores_agree_on_one_key(open_store: OpenStore) -> None:
    # One store per thread: as separate processes would, they share only the database.
    stores = [open_store(KEK) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def first_use(store: SqlKeyStore) -> bytes:
        start.wait()
        return store.data_key(AMS, SUBJECT)

    with ThreadPoolExecutor(max_workers=len(stores)) as pool:
        keys = list(pool.map(first_use, stores))
    assert len(set(keys)) == 1


def race_first_use_against_erasure(
    creator: SqlKeyStore, eraser: SqlKeyStore, subject: str, whole_subject: bool = False
) -> None:
    start = threading.Barrier(2)

    def create() -> None:
        start.wait()
        with contextlib.suppress(SubjectErasedError):
            creator.data_key(AMS, subject)

    def erase() -> None:
        start.wait()
        if whole_subject:
            eraser.destroy_subject(subject)
        else:
            eraser.destroy(AMS, subject)

    threads = [threading.Thread(target=create), threading.Thread(target=erase)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_an_erasure_racing_with_first_use_leaves_no_key(open_store: OpenStore) -> None:
    creator, eraser = open_store(KEK), open_store(KEK)
    for round_ in range(5):
        subject = f"race-{round_}"
        race_first_use_against_erasure(creator, eraser, subject)
        # Whichever came first, the subject ends erased and without a key.
        assert creator.find(AMS, subject) is None
        assert creator.is_erased(AMS, subject)
        with pytest.raises(SubjectErasedError):
            creator.data_key(AMS, subject)


def test_the_platforms_erasure_racing_with_first_use_leaves_no_key(open_store: OpenStore) -> None:
    creator, eraser = open_store(KEK), open_store(KEK)
    for round_ in range(5):
        subject = f"race-all-{round_}"
        race_first_use_against_erasure(creator, eraser, subject, whole_subject=True)
        assert creator.find(AMS, subject) is None
        assert creator.is_erased(AMS, subject)
        with pytest.raises(SubjectErasedError):
            creator.data_key(AMS, subject)


def test_a_store_from_before_keys_per_municipality_is_refused_unless_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SqlKeyStore(url, KEK).engine
    with old.begin() as connection:
        connection.exec_driver_sql("DROP TABLE subject_keys")
        connection.exec_driver_sql(
            "CREATE TABLE subject_keys (subject VARCHAR(128) PRIMARY KEY, wrapped_key BLOB,"
            " created_at VARCHAR(40) NOT NULL, erased_at VARCHAR(40))"
        )
    # Empty: nothing to keep, the new table replaces it.
    SqlKeyStore(url, KEK).data_key(AMS, SUBJECT)
    with old.begin() as connection:
        connection.exec_driver_sql("DROP TABLE subject_keys")
        connection.exec_driver_sql(
            "CREATE TABLE subject_keys (subject VARCHAR(128) PRIMARY KEY, wrapped_key BLOB,"
            " created_at VARCHAR(40) NOT NULL, erased_at VARCHAR(40))"
        )
        connection.exec_driver_sql("INSERT INTO subject_keys VALUES ('s', x'00', 'now', NULL)")
    # One key per subject, shared by every municipality: no erasure could shred it. Refused.
    with pytest.raises(OutdatedKeyStoreError):
        SqlKeyStore(url, KEK)
    old.dispose()


def _wrapped_key(store: SqlKeyStore, subject: str) -> bytes:
    wrapped = stored_column(store, subject)
    assert wrapped is not None
    return wrapped


def test_an_erasure_leaves_no_copy_of_the_wrapped_key_in_the_sqlite_files(tmp_path: Path) -> None:
    store = SqlKeyStore(f"sqlite:///{tmp_path / 'signals.db'}", KEK)
    for n in range(50):  # neighbours on the same pages, written before and after
        store.data_key(AMS, f"{n:032x}")
    store.data_key(AMS, SUBJECT)
    wrapped = _wrapped_key(store, SUBJECT)
    store.data_key(AMS, OTHER_SUBJECT)
    assert any(wrapped in path.read_bytes() for path in tmp_path.iterdir())  # the probe can fail

    store.destroy(AMS, SUBJECT)

    holders = [path.name for path in tmp_path.iterdir() if wrapped in path.read_bytes()]
    assert holders == []
    assert store.find(AMS, OTHER_SUBJECT) is not None


def test_an_erasure_leaves_no_copy_of_the_wrapped_key_in_the_postgresql_table(postgres_url: str) -> None:
    store = SqlKeyStore(postgres_url, KEK)
    with store.engine.begin() as connection:
        connection.execute(subject_keys.delete())
    for n in range(50):
        store.data_key(AMS, f"{n:032x}")
    store.data_key(AMS, SUBJECT)
    wrapped = _wrapped_key(store, SUBJECT)

    def table_files() -> bytes:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("CHECKPOINT")  # shared buffers to the table's files
            directory = connection.exec_driver_sql("SHOW data_directory").scalar_one()
            relation = connection.exec_driver_sql("SELECT pg_relation_filepath('subject_keys')").scalar_one()
        path = Path(directory) / relation
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))

    assert wrapped in table_files()  # the probe can fail
    store.destroy(AMS, SUBJECT)
    assert wrapped not in table_files()
    store.engine.dispose()


# -- a batch's reads and writes --------------------------------------------------------------


def write(store: SqlKeyStore, writes: KeyWrites) -> None:
    """`writes` in a transaction of their own (the ledger's flush makes it one with its own)."""
    with store.engine.begin() as connection:
        write_keys(connection, writes)


def test_a_batch_lookup_tells_live_erased_and_missing_keys_apart(store: SqlKeyStore) -> None:
    live = store.data_key(AMS, SUBJECT)
    store.destroy(OTHER, SUBJECT)  # OTHER's key of the subject: a tombstone, never a key
    store.destroy_subject(OTHER_SUBJECT)  # the platform's erasure: every municipality's
    found = store.look_up([(AMS, SUBJECT), (OTHER, SUBJECT), (AMS, OTHER_SUBJECT), ("gm0599", SUBJECT)])
    assert found == {
        (AMS, SUBJECT): StoredKey(live, published=False),
        (OTHER, SUBJECT): StoredKey(None),
        (AMS, OTHER_SUBJECT): StoredKey(None),  # it never had a key: barred all the same
    }  # gm0599 never had a key of SUBJECT: absent
    assert found[(OTHER, SUBJECT)].erased and not found[(AMS, SUBJECT)].erased
    assert store.look_up([]) == {}


def test_a_batch_lookup_reads_every_subject_of_a_batch_larger_than_one_query(
    store: SqlKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keystore, "LOOKUP_CHUNK", 2)
    subjects = [f"{n:032x}" for n in range(5)]
    keys = {subject: store.data_key(AMS, subject) for subject in subjects}
    found = store.look_up([(AMS, subject) for subject in subjects])
    assert {pair[1]: stored.key for pair, stored in found.items()} == keys


def test_a_new_key_is_stored_only_by_its_batchs_writes(store: SqlKeyStore) -> None:
    new = store.new_key(AMS, SUBJECT)
    assert new.pair == (AMS, SUBJECT) and len(new.key) == DATA_KEY_BYTES
    assert new.key not in new.wrapped and store.look_up([new.pair]) == {}  # nothing stored yet
    write(store, KeyWrites(created=(new,)))
    assert store.find(AMS, SUBJECT) == new.key
    assert store.data_key(AMS, SUBJECT) == new.key
    assert store.look_up([new.pair]) == {new.pair: StoredKey(new.key, published=False)}


def test_a_key_marked_published_is_looked_up_as_published(store: SqlKeyStore) -> None:
    key = store.data_key(AMS, SUBJECT)
    other = store.data_key(AMS, OTHER_SUBJECT)
    write(store, KeyWrites(published=((AMS, SUBJECT),)))
    assert store.look_up([(AMS, SUBJECT), (AMS, OTHER_SUBJECT)]) == {
        (AMS, SUBJECT): StoredKey(key, published=True),
        (AMS, OTHER_SUBJECT): StoredKey(other, published=False),
    }


def test_writing_a_new_key_for_a_pair_that_has_a_row_fails_whole(store: SqlKeyStore) -> None:
    existing = store.data_key(AMS, SUBJECT)
    store.destroy(OTHER, SUBJECT)  # a tombstone is a row too
    fresh = store.new_key(AMS, OTHER_SUBJECT)
    for taken in (store.new_key(AMS, SUBJECT), store.new_key(OTHER, SUBJECT)):
        with pytest.raises(IntegrityError):
            write(store, KeyWrites(created=(fresh, taken)))
        # nothing of it was written: the other writer's key and the erasure stand
        assert store.find(AMS, OTHER_SUBJECT) is None
    assert store.find(AMS, SUBJECT) == existing and store.is_erased(OTHER, SUBJECT)


def test_a_new_key_of_a_subject_the_platform_erased_meanwhile_is_destroyed_when_settled(
    store: SqlKeyStore,
) -> None:
    kept, barred = store.new_key(AMS, OTHER_SUBJECT), store.new_key(AMS, SUBJECT)
    write(store, KeyWrites(created=(kept, barred)))
    store.settle_created([kept, barred])  # no erasure: nothing to do
    assert store.find(AMS, SUBJECT) == barred.key
    # The platform's erasure writes its subject-wide tombstone first (its second step, erasing
    # every row, has not run yet) ...
    with store.engine.begin() as connection:
        connection.execute(
            subject_keys.insert().values(
                subject=SUBJECT, municipality=ALL_MUNICIPALITIES, created_at="now", erased_at="now"
            )
        )
    # ... so settling the batch's new key finds it, destroys the key and refuses the batch.
    with pytest.raises(SubjectErasedError):
        store.settle_created([kept, barred])
    assert store.find(AMS, SUBJECT) is None and store.is_erased(AMS, SUBJECT)
    assert store.find(AMS, OTHER_SUBJECT) == kept.key


def test_a_store_from_before_publication_marks_gains_them_and_counts_its_keys_unpublished(
    open_store: OpenStore,
) -> None:
    store = open_store(KEK)
    key = store.data_key(AMS, SUBJECT)
    write(store, KeyWrites(published=((AMS, SUBJECT),)))
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE subject_keys DROP COLUMN published_at")
    reopened = open_store(KEK)
    columns = {c["name"] for c in inspect(reopened.engine).get_columns("subject_keys")}
    assert "published_at" in columns
    # Whether its record was published is not known: it is published again with its next signal.
    assert reopened.look_up([(AMS, SUBJECT)]) == {(AMS, SUBJECT): StoredKey(key, published=False)}
