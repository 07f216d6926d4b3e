"""Rotating the key-encryption key on SQLite and PostgreSQL: every live data key rewrapped in
one transaction, payloads still readable, erased subjects still erased, the old KEK no longer
opening the store, and an interrupted rotation refused at signals' start and finished by
running it again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.signals.kek_rotation import (
    RotationInterruptedError,
    kek_file,
    refuse_interrupted_rotation,
    rotate_kek,
)
from services.signals.keystore import SqlKeyStore
from shared.contracts.crypto.datakeys import DecryptionError, decrypt, encrypt
from shared.contracts.crypto.keys import KeyRing

SUBJECTS = [f"{n:032x}" for n in range(1, 6)]
ERASED = SUBJECTS[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'signals.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    store = SqlKeyStore(url, bytes(32))
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM subject_keys"))
    store.engine.dispose()
    yield url


def prepared(keys_dir: Path, url: str) -> tuple[bytes, dict[str, bytes]]:
    """The KEK, and one payload per live subject encrypted with its data key."""
    kek = KeyRing.for_service("signals", keys_dir, generate_missing=True).secret("key-encryption-key")
    store = SqlKeyStore(url, kek)
    payloads = {
        subject: encrypt(store.data_key("gm0363", subject), subject.encode(), b"ctx") for subject in SUBJECTS
    }
    assert store.destroy("gm0363", ERASED)
    store.engine.dispose()
    return kek, payloads


def readable(url: str, kek: bytes, payloads: dict[str, bytes]) -> None:
    store = SqlKeyStore(url, kek)
    try:
        for subject, box in payloads.items():
            key = store.find("gm0363", subject)
            if subject == ERASED:
                assert key is None and store.is_erased("gm0363", subject)
            else:
                assert key is not None and decrypt(key, box, b"ctx") == subject.encode()
    finally:
        store.engine.dispose()


def test_rotation_rewraps_every_live_key_and_the_old_kek_no_longer_opens_them(
    database: str, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    old, payloads = prepared(keys_dir, database)
    done = rotate_kek(keys_dir, database)
    assert done.rewrapped == len(SUBJECTS) - 1 and not done.resumed
    new = kek_file(keys_dir).read_bytes()
    assert new != old and done.previous_file.read_bytes() == old
    assert not kek_file(keys_dir, "next").exists()
    assert oct(kek_file(keys_dir).stat().st_mode & 0o777) == "0o600"
    readable(database, new, payloads)
    stale = SqlKeyStore(database, old)
    with pytest.raises(DecryptionError):
        stale.find("gm0363", SUBJECTS[0])
    stale.engine.dispose()


def test_an_interrupted_rotation_stops_signals_and_finishes_when_run_again(
    database: str, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    old, payloads = prepared(keys_dir, database)
    # as if the process died after rewrapping, before the new KEK took the old one's place
    next_kek = bytes(range(32))
    kek_file(keys_dir, "next").write_bytes(next_kek)
    store = SqlKeyStore(database, old)
    store.rewrap_all(next_kek)
    store.engine.dispose()
    with pytest.raises(RotationInterruptedError):
        refuse_interrupted_rotation(keys_dir)
    done = rotate_kek(keys_dir, database)
    assert done.resumed and done.rewrapped == len(SUBJECTS) - 1
    assert kek_file(keys_dir).read_bytes() == next_kek
    refuse_interrupted_rotation(keys_dir)
    readable(database, next_kek, payloads)


def test_a_store_restored_from_before_a_rotation_is_rewrapped_with_the_old_kek_given(
    database: str, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    old, payloads = prepared(keys_dir, database)
    kek_file(keys_dir).write_bytes(bytes(32))  # the KEK rotated away since that backup
    with pytest.raises(DecryptionError):
        rotate_kek(keys_dir, database)  # nothing opens the restored keys: nothing changes
    kek_file(keys_dir, "next").unlink()
    readable(database, old, payloads)
    rotate_kek(keys_dir, database, older=(old,))
    readable(database, kek_file(keys_dir).read_bytes(), payloads)
