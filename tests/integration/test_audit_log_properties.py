"""Properties of the audit log on a real SQLite store (hypothesis, derandomised).

Every inclusion and consistency proof the store computes verifies against its root; and any
single change, deletion, insertion or reordering of a stored record, or a truncation, is found
by verify and located at the first record it touched, whether or not the tamperer re-hashed the
stored tree afterwards (then only the checkpoints kept outside the store, here one per size as
published on audit.checkpoints.v1, give it away).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.audit.log.sql_store import SqlAuditStore, audit_records
from services.audit.log.verification import verify_store
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import Checkpoint
from tests.integration.test_audit_store_contract import ORIGIN, fact, rehash_behind_the_logs_back

PROPERTIES = settings(max_examples=40, deadline=None, derandomize=True)


@contextmanager
def log_of(size: int) -> Iterator[SqlAuditStore]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqlAuditStore(f"sqlite:///{Path(folder) / 'audit.db'}")
        store.append_batch([fact(offset, f"s-{offset}") for offset in range(size)])
        try:
            yield store
        finally:
            store.engine.dispose()


@PROPERTIES
@given(st.integers(1, 200), st.data())
def test_every_inclusion_and_consistency_proof_verifies(size: int, data: st.DataObject) -> None:
    with log_of(size) as store:
        index = data.draw(st.integers(0, size - 1))
        tree_size = data.draw(st.integers(index + 1, size))
        first = data.draw(st.integers(1, size))
        second = data.draw(st.integers(first, size))
        leaf = store.perfect_node(0, index)
        proof = merkle.inclusion_proof(index, tree_size, store)
        merkle.verify_inclusion(leaf, index, tree_size, proof, merkle.root(tree_size, store))
        merkle.verify_consistency(
            first,
            second,
            merkle.root(first, store),
            merkle.root(second, store),
            merkle.consistency_proof(first, second, store),
        )


TAMPERINGS = ("change", "delete", "insert", "swap", "truncate")
COLUMNS = ", ".join(column.name for column in audit_records.columns)  # the SELECT below names them in order


def tamper(store: SqlAuditStore, how: str, at: int) -> int:
    """Change the stored log behind its back; returns the first record the change touches."""
    statements = {
        "change": ["UPDATE audit_log_records SET source = 'gm0599' WHERE seq = :at"],
        "delete": [
            "DELETE FROM audit_log_records WHERE seq = :at",
            "UPDATE audit_log_records SET seq = seq - 1 WHERE seq > :at",
        ],
        "insert": [  # a copy of record `at`, with another event id, slipped in before it
            "UPDATE audit_log_records SET seq = seq + 1000 WHERE seq >= :at",
            "UPDATE audit_log_records SET seq = seq - 999 WHERE seq >= 1000",
            f"INSERT INTO audit_log_records ({COLUMNS}) SELECT :at, recorded_at, event_type, 'inserted',"
            " event_time, source, target, signal_id, subject_pseudonym, category, purpose,"
            " legal_basis, agreement_id, agreement_version, fields, delivery_id, decision, reasons,"
            " confidential_until, correlation_id, kafka_topic, kafka_partition, kafka_offset + 100000"
            " FROM audit_log_records WHERE seq = :at + 1",
        ],
        "swap": [
            "UPDATE audit_log_records SET seq = -1 WHERE seq = :at",
            "UPDATE audit_log_records SET seq = :at WHERE seq = :at + 1",
            "UPDATE audit_log_records SET seq = :at + 1 WHERE seq = -1",
        ],
        "truncate": ["DELETE FROM audit_log_records WHERE seq >= :at"],
    }
    with store.engine.begin() as connection:
        for statement in statements[how]:
            connection.execute(text(statement), {"at": at})
    return at


@PROPERTIES
@given(st.integers(2, 40), st.sampled_from(TAMPERINGS), st.booleans(), st.data())
def test_any_single_tampering_is_found_and_located(
    size: int, how: str, rehashed: bool, data: st.DataObject
) -> None:
    with log_of(size) as store:
        at = data.draw(st.integers(1, size - 1))  # swap needs a next record; every kind fits here
        outside = [Checkpoint(ORIGIN, n, merkle.root(n, store)) for n in range(1, size + 1)]
        assert verify_store(store, outside=outside).intact
        first = tamper(store, how, at)
        if rehashed:
            rehash_behind_the_logs_back(store)
        result = verify_store(store, outside=outside)
        assert not result.intact, (how, at, rehashed)
        assert result.first_bad_seq == first, (how, at, rehashed, result)
