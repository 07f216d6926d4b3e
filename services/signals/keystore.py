"""The data-key store: one data key per subject and providing municipality, destroyable.

Each municipality is the controller of what it provided (ADR 0009): its signals about a subject
are encrypted with a key of that subject and that municipality alone, so its erasure shreds
what it provided and nothing another municipality provided; the platform's privacy officer's
erasure shreds every key of the subject.

`SqlKeyStore` runs on SQLAlchemy Core, SQLite by default and PostgreSQL for scale. It stores
only wrapped keys (`shared.contracts.crypto.datakeys.wrap` under the KEK, context
b"data-key/v2|" + subject + b"|" + municipality), so a copy of the database alone reveals no
data key, and a wrapped key moved to another row does not unwrap there.

Table `subject_keys`, one row per (subject, municipality) that ever had a key or was erased:
  subject      the subject pseudonym           } primary key
  municipality the providing municipality, or  }
               `*` for the subject-wide tombstone of the platform's erasure
  wrapped_key  61 bytes (datakeys layout), NULL once erased (always NULL for `*`)
  created_at   ISO 8601 UTC, when the row was made
  erased_at    ISO 8601 UTC, when the key was destroyed; NULL while it lives
  published_at ISO 8601 UTC, when its record on subjects.keys.v1 was known to be committed;
               NULL until then (or for a row from before this column: unknown)
Rows are never deleted: an erased key keeps a tombstone, so its erasure is permanent (no new
key is ever issued for it, which would let later payloads outlive the erasure) and auditable.
The `*` row bars every municipality's key of the subject, also one made later.

The intake works per batch (services/signals/intake.py): one read looks up the keys of a
batch's signals (`look_up`), a key a signal needs and lacks is made in memory (`new_key`) and
written with the batch's ledger entries in one database transaction (`KeyWrites`, written by
the ledger's `flush`), before the batch's Kafka transaction commits. A key's record on
subjects.keys.v1 is written once, with the first signal that uses it, not with every signal:
`published_at` says that record is committed. It can be set only after the Kafka transaction
committed, so it is written with the next batch's flush; until then, and after a crash that
lost it, a key without it is published again with its next signal (the same key, sealed
again: harmless on the compacted topic). So consent always finds the key of every accepted
signal there, committed with or before the signal, and compaction keeps it.

An erasure leaves no copy of the wrapped key in the store's files. On SQLite, secure_delete
zeroes the old row in its page, and a truncating WAL checkpoint right after the erasure writes
that page back and empties the write-ahead log, which held the old page version. On PostgreSQL,
the erased row version is a dead tuple until vacuumed: the erasure vacuums the table at once.
What the store cannot reach: PostgreSQL's WAL segments (and WAL archives) until they are
recycled, and backups. They hold the key only wrapped, so they are as safe as the KEK;
operators keep backup and WAL-archive retention bounded and rotate the KEK (rewrap the live
keys, then destroy the old KEK), which retires every older copy for good (README, "Erasure").

Keys are not cached in memory: every call reads the table, so a destroy in one process holds for
the very next call in every other process.

A store made before ADR 0009 (one key per subject, no `municipality` column) is refused at
start when it holds keys: they cannot be split by provider without keeping a shared copy, which
no erasure would shred. An empty one is replaced.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.contracts.crypto.datakeys import KEK_BYTES, DecryptionError, new_data_key, unwrap, wrap
from shared.plumbing.logging import get_logger
from shared.plumbing.metrics import timed
from shared.plumbing.sql import answers, create_schema, create_store_engine

log = get_logger()
PURGE_ATTEMPTS = 50
LOOKUP_CHUNK = 500
"""Subjects per SELECT ... IN of a batch lookup (far below every database's parameter limit)."""

metadata = MetaData()

subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("municipality", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("erased_at", String(40), nullable=True),
    Column("published_at", String(40), nullable=True),
)


ALL_MUNICIPALITIES = "*"
"""The `municipality` of the subject-wide tombstone (the platform's erasure)."""


class SubjectErasedError(LookupError):
    """The data key of the subject and municipality was destroyed; there will never be another."""

    def __init__(self, subject: str, municipality: str) -> None:
        super().__init__(f"the data {municipality} provided about subject {subject!r} was erased")
        self.subject = subject
        self.municipality = municipality


class OutdatedKeyStoreError(RuntimeError):
    """The store holds one key per subject (before ADR 0009) and must not be used."""


Pair = tuple[str, str]
"""(municipality, subject): whose data key."""


@dataclass(frozen=True)
class StoredKey:
    """A pair's data key as the store holds it (`look_up`)."""

    key: bytes | None = field(repr=False)
    """The data key; None when it was destroyed (or the whole subject was erased)."""
    published: bool = False
    """Its record on subjects.keys.v1 is known to be committed."""

    @property
    def erased(self) -> bool:
        return self.key is None


@dataclass(frozen=True)
class NewKey:
    """A data key made for a batch (`new_key`), stored only by the batch's `KeyWrites`."""

    municipality: str
    subject: str
    key: bytes = field(repr=False)
    wrapped: bytes = field(repr=False)

    @property
    def pair(self) -> Pair:
        return (self.municipality, self.subject)


@dataclass(frozen=True)
class KeyWrites:
    """What a batch writes to the key store, in its ledger flush's database transaction (one
    transaction per batch, before the batch's Kafka transaction commits): the keys it made,
    and the pairs whose key records are now known to be committed (by an earlier batch)."""

    created: tuple[NewKey, ...] = ()
    published: tuple[Pair, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.created or self.published)


NO_KEY_WRITES = KeyWrites()


class KeyStore(Protocol):
    def data_key(self, municipality: str, subject: str) -> bytes:
        """The data key of what `municipality` provides about `subject`, created on first use.

        Atomic across callers and processes: concurrent first calls for one (municipality,
        subject) all get the same key. Raises SubjectErasedError if that key was destroyed or
        the whole subject was erased, and DecryptionError if the stored key does not unwrap
        with this store's KEK.
        """

    def find(self, municipality: str, subject: str) -> bytes | None:
        """That data key, or None if there is none (never created, or erased).

        Never creates a key. Raises DecryptionError if the stored key does not unwrap.
        """

    def look_up(self, pairs: Collection[Pair]) -> dict[Pair, StoredKey]:
        """The data keys of a batch, in one read: for each (municipality, subject) that has a
        row, its key (and whether its record is known published) or that it was erased (also
        by the subject-wide tombstone); a pair that never had a key is absent. Never creates a
        key. Raises DecryptionError if a stored key does not unwrap.
        """

    def new_key(self, municipality: str, subject: str) -> NewKey:
        """A fresh data key for the pair, wrapped with the KEK; stored by nothing but the
        batch's `KeyWrites` (`write_keys` in the ledger's flush), which fails whole when the
        pair got a row meanwhile (another writer's key, or an erasure's tombstone)."""

    def settle_created(self, keys: Sequence[NewKey]) -> None:
        """After the flush that stored `keys` committed: the platform's erasure of a subject
        may have raced with it. It writes its `*` tombstone first and then erases every row of
        the subject, so either it covered the new rows, or its tombstone is visible now: then
        those rows are erased here and SubjectErasedError is raised (the batch aborts; read
        again, its signals are refused as subject_erased).
        """

    def destroy(self, municipality: str, subject: str) -> bool:
        """Destroy the data key of what `municipality` provided about `subject`, for good; True
        if a key existed. Every other municipality's key of the subject stays.

        Afterwards find() returns None, is_erased() is True and data_key() raises
        SubjectErasedError for that pair, also when it never had a key. Idempotent: a second
        call returns False.
        """

    def destroy_subject(self, subject: str) -> tuple[tuple[str, ...], bool]:
        """Destroy every municipality's data key of `subject`, for good, and bar new ones.

        Returns (every municipality that ever had a key of the subject, sorted; whether a live
        key was destroyed). Idempotent.
        """

    def is_erased(self, municipality: str, subject: str) -> bool:
        """Whether that data key was destroyed (or the whole subject erased)."""

    def ping(self) -> bool:
        """The store answers."""


def _unwrap_with_any(keks: Sequence[bytes], wrapped: bytes, context: bytes) -> bytes:
    for kek in keks:
        try:
            return unwrap(kek, wrapped, context)
        except DecryptionError:
            continue
    raise DecryptionError("no known KEK unwraps this key")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _context(subject: str, municipality: str) -> bytes:
    return f"data-key/v2|{subject}|{municipality}".encode()


class SqlKeyStore:
    def __init__(self, url: str, kek: bytes, older_keks: Sequence[bytes] = ()) -> None:
        """`kek` wraps every new key; `older_keks` may still unwrap rows not yet rewrapped
        (only while a KEK rotation is resumed: services/signals/kek_rotation.py)."""
        for key in (kek, *older_keks):
            if len(key) != KEK_BYTES:
                raise ValueError(f"a KEK must be {KEK_BYTES} bytes, got {len(key)}")
        self._kek = kek
        self._older_keks = tuple(older_keks)
        self._engine: Engine = create_store_engine(url)
        _refuse_outdated(self._engine)
        create_schema(self._engine, metadata)
        _add_published_at(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def _rows(self, municipality: str, subject: str) -> dict[str, Any]:
        """The rows of `subject` for `municipality` and the subject-wide tombstone, by municipality."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    subject_keys.c.municipality, subject_keys.c.wrapped_key, subject_keys.c.erased_at
                ).where(
                    subject_keys.c.subject == subject,
                    subject_keys.c.municipality.in_((municipality, ALL_MUNICIPALITIES)),
                )
            ).all()
        return {row.municipality: row for row in rows}

    def _live_key(self, municipality: str, subject: str) -> bytes | None:
        """The unwrapped key; None if there is no row; SubjectErasedError for a tombstone."""
        rows = self._rows(municipality, subject)
        if ALL_MUNICIPALITIES in rows:
            raise SubjectErasedError(subject, municipality)
        row = rows.get(municipality)
        if row is None:
            return None
        if row.wrapped_key is None:
            raise SubjectErasedError(subject, municipality)
        return self._unwrap(bytes(row.wrapped_key), subject, municipality)

    def _unwrap(self, wrapped: bytes, subject: str, municipality: str) -> bytes:
        for older in self._older_keks:
            try:
                return unwrap(older, wrapped, _context(subject, municipality))
            except DecryptionError:
                continue
        return unwrap(self._kek, wrapped, _context(subject, municipality))

    def rewrap_all(self, new_kek: bytes) -> int:
        """Wrap every live data key with `new_kek`, in one transaction (all or nothing); the
        data keys themselves do not change, so every payload stays readable and an erased
        key stays erased (its row holds no key). Returns how many keys were rewrapped."""
        if len(new_kek) != KEK_BYTES:
            raise ValueError(f"a KEK must be {KEK_BYTES} bytes, got {len(new_kek)}")
        keks = (*self._older_keks, self._kek, new_kek)
        rewrapped = 0
        with self._engine.begin() as connection:
            rows = connection.execute(
                select(subject_keys.c.subject, subject_keys.c.municipality, subject_keys.c.wrapped_key).where(
                    subject_keys.c.wrapped_key.is_not(None)
                )
            ).all()
            for row in rows:
                context = _context(row.subject, row.municipality)
                data_key = _unwrap_with_any(keks, bytes(row.wrapped_key), context)
                connection.execute(
                    update(subject_keys)
                    .where(
                        subject_keys.c.subject == row.subject,
                        subject_keys.c.municipality == row.municipality,
                        subject_keys.c.wrapped_key.is_not(None),
                    )
                    .values(wrapped_key=wrap(new_kek, data_key, context))
                )
                rewrapped += 1
        self._kek, self._older_keks = new_kek, ()
        self._purge_old_versions()  # the rows wrapped with the old KEK leave the files too
        return rewrapped

    @timed("keystore", "data_key")
    def data_key(self, municipality: str, subject: str) -> bytes:
        if municipality == ALL_MUNICIPALITIES:
            raise ValueError(f"{ALL_MUNICIPALITIES!r} names no municipality")
        existing = self._live_key(municipality, subject)
        if existing is not None:
            return existing
        candidate = new_data_key()
        try:
            # The insert runs alone in its transaction: on SQLite a read before it would pin a
            # snapshot that a concurrent writer invalidates (SQLITE_BUSY, no retry), and on
            # PostgreSQL the primary key makes racing inserts wait, then all but one fail.
            with self._engine.begin() as connection:
                connection.execute(
                    subject_keys.insert().values(
                        subject=subject,
                        municipality=municipality,
                        wrapped_key=wrap(self._kek, candidate, _context(subject, municipality)),
                        created_at=_now(),
                        erased_at=None,
                    )
                )
        except IntegrityError:
            # Another caller created the row first (or erased the pair): theirs is the answer.
            winner = self._live_key(municipality, subject)
            if winner is None:
                raise RuntimeError("a subject_keys row vanished; rows must never be deleted") from None
            return winner
        # The platform's erasure of the whole subject may have raced with this insert: it writes
        # its `*` tombstone first and then erases every row, so either that erasure already
        # covered the new row, or its tombstone is visible now.
        if ALL_MUNICIPALITIES in self._rows(municipality, subject):
            with self._engine.begin() as connection:
                self._erase(connection, municipality, subject)
            raise SubjectErasedError(subject, municipality)
        return candidate

    @timed("keystore", "find")
    def find(self, municipality: str, subject: str) -> bytes | None:
        try:
            return self._live_key(municipality, subject)
        except SubjectErasedError:
            return None

    @timed("keystore", "look_up")
    def look_up(self, pairs: Collection[Pair]) -> dict[Pair, StoredKey]:
        wanted = set(pairs)
        if any(municipality == ALL_MUNICIPALITIES for municipality, _ in wanted):
            raise ValueError(f"{ALL_MUNICIPALITIES!r} names no municipality")
        rows: dict[Pair, Any] = {}
        with self._engine.connect() as connection:
            for subjects in _chunks(sorted({subject for _, subject in wanted})):
                for found_row in connection.execute(
                    select(
                        subject_keys.c.subject,
                        subject_keys.c.municipality,
                        subject_keys.c.wrapped_key,
                        subject_keys.c.published_at,
                    ).where(subject_keys.c.subject.in_(subjects))
                ):
                    rows[(found_row.municipality, found_row.subject)] = found_row
        found: dict[Pair, StoredKey] = {}
        for municipality, subject in wanted:
            row = rows.get((municipality, subject))
            if (ALL_MUNICIPALITIES, subject) in rows or (row is not None and row.wrapped_key is None):
                found[(municipality, subject)] = StoredKey(None)
            elif row is not None:
                key = self._unwrap(bytes(row.wrapped_key), subject, municipality)
                found[(municipality, subject)] = StoredKey(key, published=row.published_at is not None)
        return found

    def new_key(self, municipality: str, subject: str) -> NewKey:
        if municipality == ALL_MUNICIPALITIES:
            raise ValueError(f"{ALL_MUNICIPALITIES!r} names no municipality")
        key = new_data_key()
        return NewKey(municipality, subject, key, wrap(self._kek, key, _context(subject, municipality)))

    @timed("keystore", "settle_created")
    def settle_created(self, keys: Sequence[NewKey]) -> None:
        if not keys:
            return
        subjects = sorted({key.subject for key in keys})
        with self._engine.connect() as connection:
            barred = {
                subject
                for chunk in _chunks(subjects)
                for subject in connection.execute(
                    select(subject_keys.c.subject).where(
                        subject_keys.c.subject.in_(chunk), subject_keys.c.municipality == ALL_MUNICIPALITIES
                    )
                ).scalars()
            }
        erased = [key for key in keys if key.subject in barred]
        if not erased:
            return
        with self._engine.begin() as connection:
            for key in erased:
                self._erase(connection, key.municipality, key.subject)
        raise SubjectErasedError(erased[0].subject, erased[0].municipality)

    def _erase(self, connection: Connection, municipality: str, subject: str) -> bool:
        result = connection.execute(
            update(subject_keys)
            .where(
                subject_keys.c.subject == subject,
                subject_keys.c.municipality == municipality,
                subject_keys.c.wrapped_key.is_not(None),
            )
            .values(wrapped_key=None, erased_at=_now())
        )
        return result.rowcount == 1

    @timed("keystore", "destroy")
    def destroy(self, municipality: str, subject: str) -> bool:
        if municipality == ALL_MUNICIPALITIES:
            raise ValueError("destroy_subject() erases every municipality's key")
        erased = self._destroy(municipality, subject)
        self._purge_old_versions()
        return erased

    @timed("keystore", "destroy_subject")
    def destroy_subject(self, subject: str) -> tuple[tuple[str, ...], bool]:
        self._tombstone(ALL_MUNICIPALITIES, subject)  # first: bars every key made from now on
        with self._engine.begin() as connection:
            erased = connection.execute(
                update(subject_keys)
                .where(subject_keys.c.subject == subject, subject_keys.c.wrapped_key.is_not(None))
                .values(wrapped_key=None, erased_at=_now())
            ).rowcount
            municipalities = connection.execute(
                select(subject_keys.c.municipality).where(
                    subject_keys.c.subject == subject, subject_keys.c.municipality != ALL_MUNICIPALITIES
                )
            ).scalars()
            had = tuple(sorted(municipalities))
        self._purge_old_versions()
        return had, erased > 0

    def _tombstone(self, municipality: str, subject: str) -> bool:
        """Insert an erased row; False when a row was there already."""
        try:
            with self._engine.begin() as connection:
                now = _now()
                connection.execute(
                    subject_keys.insert().values(
                        subject=subject,
                        municipality=municipality,
                        wrapped_key=None,
                        created_at=now,
                        erased_at=now,
                    )
                )
            return True
        except IntegrityError:
            return False

    def _purge_old_versions(self) -> None:
        """Leave no earlier version of an erased row in the database's files (module docstring)."""
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM subject_keys")
            return
        if self._engine.dialect.name != "sqlite":
            return
        # A reader's open snapshot keeps the checkpoint from finishing: retry briefly.
        for _ in range(PURGE_ATTEMPTS):
            with self._engine.connect() as connection:
                busy, _log, _done = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            if busy == 0:
                return
            time.sleep(0.1)
        log.error(
            "erasure_wal_not_truncated", hint="an old copy may remain in the WAL until the next checkpoint"
        )

    def _destroy(self, municipality: str, subject: str) -> bool:
        with self._engine.begin() as connection:
            if self._erase(connection, municipality, subject):
                return True
        # No live key. A tombstone makes sure none is created later, also by a data_key() call
        # racing with this erasure.
        if self._tombstone(municipality, subject):
            return False
        # A row appeared meanwhile: a tombstone (nothing to do) or a fresh key (erase it now).
        # Rows are never deleted, so this update settles it.
        with self._engine.begin() as connection:
            return self._erase(connection, municipality, subject)

    def is_erased(self, municipality: str, subject: str) -> bool:
        rows = self._rows(municipality, subject)
        return any(row.erased_at is not None for row in rows.values())

    def ping(self) -> bool:
        return answers(self._engine)


def write_keys(connection: Connection, writes: KeyWrites) -> None:
    """`writes`, in the caller's transaction (the ledger's flush): insert the new keys (a pair
    that has a row already fails the whole transaction with IntegrityError) and mark the
    published ones."""
    if writes.created:
        now = _now()
        connection.execute(
            subject_keys.insert(),
            [
                {
                    "subject": key.subject,
                    "municipality": key.municipality,
                    "wrapped_key": key.wrapped,
                    "created_at": now,
                    "erased_at": None,
                    "published_at": None,
                }
                for key in writes.created
            ],
        )
    if writes.published:
        connection.execute(
            update(subject_keys)
            .where(
                subject_keys.c.subject == bindparam("pair_subject"),
                subject_keys.c.municipality == bindparam("pair_municipality"),
                subject_keys.c.published_at.is_(None),
            )
            .values(published_at=_now()),
            [
                {"pair_subject": subject, "pair_municipality": municipality}
                for municipality, subject in writes.published
            ],
        )


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _add_published_at(engine: Engine) -> None:
    """A store from before `published_at` gets the column; its keys count as not known to be
    published, so each is published once more with its subject's next signal."""
    if "published_at" in {column["name"] for column in inspect(engine).get_columns(subject_keys.name)}:
        return
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE subject_keys ADD COLUMN published_at VARCHAR(40)"))
    except DBAPIError:
        # Another instance added it meanwhile.
        if "published_at" not in {c["name"] for c in inspect(engine).get_columns(subject_keys.name)}:
            raise
    log.info("keystore_column_added", column="published_at")


def _refuse_outdated(engine: Engine) -> None:
    """Refuse a store from before ADR 0009 that holds keys; an empty one is replaced."""
    tables = inspect(engine)
    if not tables.has_table(subject_keys.name):
        return
    columns = {column["name"] for column in tables.get_columns(subject_keys.name)}
    if "municipality" in columns:
        return
    with engine.begin() as connection:
        if connection.execute(text("SELECT count(*) FROM subject_keys")).scalar_one() == 0:
            connection.execute(text("DROP TABLE subject_keys"))
            return
    raise OutdatedKeyStoreError(
        "the key store holds one data key per subject (before ADR 0009); one key per"
        " municipality cannot be derived from it without a shared copy no erasure would shred."
        " Start from an empty store (docs/adr/0009-rights-follow-the-controller.md)"
    )
