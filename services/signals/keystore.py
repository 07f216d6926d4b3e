"""The data-key store: one data key per subject pseudonym, destroyable for erasure.

`SqlKeyStore` runs on SQLAlchemy Core, SQLite by default and PostgreSQL for scale. It stores
only wrapped keys (`shared.crypto.datakeys.wrap` under the KEK, context b"subject:" + subject),
so a copy of the database alone reveals no data key.

Table `subject_keys`, one row per subject that ever had a key or was erased:
  subject      primary key, the subject pseudonym
  wrapped_key  61 bytes (datakeys layout), NULL once erased
  created_at   ISO 8601 UTC, when the row was made
  erased_at    ISO 8601 UTC, when the key was destroyed; NULL while it lives
Rows are never deleted: an erased subject keeps a tombstone, so its erasure is permanent (no new
key is ever issued for it, which would let later payloads outlive the erasure) and auditable.

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
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Column, LargeBinary, MetaData, String, Table, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from shared.crypto.datakeys import KEK_BYTES, DecryptionError, new_data_key, unwrap, wrap
from shared.logging import get_logger
from shared.metrics import timed
from shared.sql import answers, create_store_engine

log = get_logger()
PURGE_ATTEMPTS = 50

metadata = MetaData()

subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("erased_at", String(40), nullable=True),
)


class SubjectErasedError(LookupError):
    """The subject's data key was destroyed; it will never have a key again."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"subject {subject!r} was erased; its data key is destroyed")
        self.subject = subject


class KeyStore(Protocol):
    def data_key(self, subject: str) -> bytes:
        """The subject's data key, created on first use.

        Atomic across callers and processes: concurrent first calls for one subject all get
        the same key. Raises SubjectErasedError if the subject was erased, and DecryptionError
        if the stored key does not unwrap with this store's KEK.
        """

    def find(self, subject: str) -> bytes | None:
        """The subject's data key, or None if it has none (never created, or erased).

        Never creates a key. Raises DecryptionError if the stored key does not unwrap.
        """

    def destroy(self, subject: str) -> bool:
        """Destroy the subject's data key for good; True if a key existed.

        Afterwards find() returns None, is_erased() is True and data_key() raises
        SubjectErasedError, also for a subject that never had a key. Idempotent: a second
        call returns False.
        """

    def is_erased(self, subject: str) -> bool:
        """Whether destroy() was ever called for this subject."""

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


def _context(subject: str) -> bytes:
    return b"subject:" + subject.encode("utf-8")


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
        metadata.create_all(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def _row(self, subject: str) -> Any:
        with self._engine.connect() as connection:
            return connection.execute(
                select(subject_keys.c.wrapped_key, subject_keys.c.erased_at).where(
                    subject_keys.c.subject == subject
                )
            ).first()

    def _live_key(self, subject: str) -> bytes | None:
        """The unwrapped key; None if there is no row; SubjectErasedError for a tombstone."""
        row = self._row(subject)
        if row is None:
            return None
        if row.wrapped_key is None:
            raise SubjectErasedError(subject)
        return self._unwrap(bytes(row.wrapped_key), subject)

    def _unwrap(self, wrapped: bytes, subject: str) -> bytes:
        for older in self._older_keks:
            try:
                return unwrap(older, wrapped, _context(subject))
            except DecryptionError:
                continue
        return unwrap(self._kek, wrapped, _context(subject))

    def rewrap_all(self, new_kek: bytes) -> int:
        """Wrap every live data key with `new_kek`, in one transaction (all or nothing); the
        data keys themselves do not change, so every payload stays readable and an erased
        subject stays erased (its row holds no key). Returns how many keys were rewrapped."""
        if len(new_kek) != KEK_BYTES:
            raise ValueError(f"a KEK must be {KEK_BYTES} bytes, got {len(new_kek)}")
        keks = (*self._older_keks, self._kek, new_kek)
        rewrapped = 0
        with self._engine.begin() as connection:
            rows = connection.execute(
                select(subject_keys.c.subject, subject_keys.c.wrapped_key).where(
                    subject_keys.c.wrapped_key.is_not(None)
                )
            ).all()
            for row in rows:
                data_key = _unwrap_with_any(keks, bytes(row.wrapped_key), _context(row.subject))
                connection.execute(
                    update(subject_keys)
                    .where(subject_keys.c.subject == row.subject, subject_keys.c.wrapped_key.is_not(None))
                    .values(wrapped_key=wrap(new_kek, data_key, _context(row.subject)))
                )
                rewrapped += 1
        self._kek, self._older_keks = new_kek, ()
        self._purge_old_versions()  # the rows wrapped with the old KEK leave the files too
        return rewrapped

    @timed("keystore", "data_key")
    def data_key(self, subject: str) -> bytes:
        existing = self._live_key(subject)
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
                        wrapped_key=wrap(self._kek, candidate, _context(subject)),
                        created_at=_now(),
                        erased_at=None,
                    )
                )
            return candidate
        except IntegrityError:
            pass
        # Another caller created the row first (or erased the subject): theirs is the answer.
        winner = self._live_key(subject)
        if winner is None:
            raise RuntimeError(f"subject_keys row of {subject!r} vanished; rows must never be deleted")
        return winner

    @timed("keystore", "find")
    def find(self, subject: str) -> bytes | None:
        try:
            return self._live_key(subject)
        except SubjectErasedError:
            return None

    def _erase(self, connection: Connection, subject: str) -> bool:
        result = connection.execute(
            update(subject_keys)
            .where(subject_keys.c.subject == subject, subject_keys.c.wrapped_key.is_not(None))
            .values(wrapped_key=None, erased_at=_now())
        )
        return result.rowcount == 1

    @timed("keystore", "destroy")
    def destroy(self, subject: str) -> bool:
        erased = self._destroy(subject)
        self._purge_old_versions()
        return erased

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

    def _destroy(self, subject: str) -> bool:
        with self._engine.begin() as connection:
            if self._erase(connection, subject):
                return True
        # No live key. A tombstone makes sure none is created later, also by a data_key() call
        # racing with this erasure.
        try:
            with self._engine.begin() as connection:
                now = _now()
                connection.execute(
                    subject_keys.insert().values(
                        subject=subject, wrapped_key=None, created_at=now, erased_at=now
                    )
                )
            return False
        except IntegrityError:
            pass
        # A row appeared meanwhile: a tombstone (nothing to do) or a fresh key (erase it now).
        # Rows are never deleted, so this update settles it.
        with self._engine.begin() as connection:
            return self._erase(connection, subject)

    def is_erased(self, subject: str) -> bool:
        row = self._row(subject)
        return row is not None and row.erased_at is not None

    def ping(self) -> bool:
        return answers(self._engine)
