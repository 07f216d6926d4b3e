"""One contract for every audit store: in memory, SQLite (embedded) and PostgreSQL (scale-out),
the way the eventsourcing library holds every recorder to one test case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from services.audit.log.facts import AuditFact
from services.audit.log.leaf import leaf_bytes, leaf_content, record_leaf_hash
from services.audit.log.lease import Lease, LeaseLostError, Takeover
from services.audit.log.query import RecordQuery
from services.audit.log.sql_store import SqlAuditStore, audit_checkpoints, audit_nodes
from services.audit.log.store import AuditStore, StoredCheckpoint
from services.audit.log.verification import verify_store
from shared.contracts.tlog.checkpoint import Checkpoint, sign_checkpoint
from shared.contracts.tlog.merkle import (
    InMemoryNodes,
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from shared.contracts.tlog.note import Signer


def fact(
    offset: int, signal_id: str = "s-1", seconds: int = 0, topic: str = "signals.accepted.v1"
) -> AuditFact:
    return AuditFact(
        event_type="nl.safetychain.signal.accepted.v1",
        event_id=str(uuid.uuid4()),
        event_time=datetime(2026, 11, 28, 12, 0, tzinfo=UTC) + timedelta(seconds=seconds),
        source="gm0363",
        signal_id=signal_id,
        fields=("category", "summary"),
        reasons=("because",),
        correlation_id="a" * 32,
        kafka_topic=topic,
        kafka_partition=0,
        kafka_offset=offset,
    )


def test_appended_facts_form_an_intact_tree(store: AuditStore) -> None:
    for offset in range(5):
        assert store.append(fact(offset)) is not None
    result = verify_store(store)
    assert result.intact and result.records_checked == 5 and store.size() == 5


def test_the_stored_tree_is_the_rfc_9162_tree_of_the_leaf_bytes(store: AuditStore) -> None:
    stored = store.append_batch([fact(offset) for offset in range(7)])
    assert [r.seq for r in stored if r] == list(range(1, 8))
    reference = InMemoryNodes()
    for record in stored:
        assert record is not None
        reference.append(leaf_bytes(record))
    for size in range(1, 8):
        assert root(size, store) == reference.root(size)
    for index in range(7):
        proof = inclusion_proof(index, 7, store)
        verify_inclusion(record_leaf_hash(store.record(index + 1) or {}), index, 7, proof, reference.root())
    verify_consistency(3, 7, reference.root(3), reference.root(), consistency_proof(3, 7, store))


def test_a_batch_with_a_redelivery_inside_stores_each_provenance_once(store: AuditStore) -> None:
    stored = store.append_batch([fact(1), fact(2), fact(1), fact(3)])
    assert [r.seq if r else None for r in stored] == [1, 2, None, 3]
    assert store.append_batch([fact(2)]) == [None]
    assert verify_store(store).intact and store.size() == 3


def test_a_batch_keeps_the_offsets_it_consumed_and_an_offset_never_moves_back(store: AuditStore) -> None:
    assert store.consumed_offsets() == {}
    # a batch from two partitions, and the offset to read next in each
    store.append_batch(
        [fact(0), fact(1), fact(0, topic="exchange.decisions.v1")],
        {
            ("signals.accepted.v1", 0): 2,
            ("exchange.decisions.v1", 0): 1,
        },
    )
    assert store.consumed_offsets() == {("signals.accepted.v1", 0): 2, ("exchange.decisions.v1", 0): 1}
    # a later batch moves one partition on; a late one from before cannot move it back
    store.append_batch([fact(2)], {("signals.accepted.v1", 0): 3, ("signals.accepted.v1", 1): 7})
    store.append_batch([fact(1)], {("signals.accepted.v1", 0): 2})
    assert store.consumed_offsets() == {
        ("signals.accepted.v1", 0): 3,
        ("signals.accepted.v1", 1): 7,
        ("exchange.decisions.v1", 0): 1,
    }
    assert store.size() == 4  # the late batch's fact was a redelivery


def test_a_batch_that_cannot_be_stored_keeps_neither_its_facts_nor_its_offsets(store: AuditStore) -> None:
    store.append_batch([fact(0)], {("signals.accepted.v1", 0): 1})
    unwritable = fact(2).model_copy(update={"agreement_version": 2**53})  # RFC 8785 cannot write it
    with pytest.raises(ValueError):
        store.append_batch([fact(1), unwritable], {("signals.accepted.v1", 0): 3})
    assert store.size() == 1 and store.consumed_offsets() == {("signals.accepted.v1", 0): 1}


def test_the_offsets_are_written_in_the_batchs_transaction(database: SqlAuditStore) -> None:
    # the database refuses the offset (beyond a 64-bit integer) after it took the records
    with pytest.raises(Exception):  # noqa: B017 (the driver's own error: OverflowError, DataError)
        database.append_batch([fact(0), fact(1)], {("signals.accepted.v1", 0): 2**63})
    assert database.size() == 0 and database.consumed_offsets() == {}
    assert database.append_batch([fact(0)], {("signals.accepted.v1", 0): 1})[0] is not None


def test_records_stream_in_sequence_from_any_start(store: AuditStore) -> None:
    store.append_batch([fact(offset) for offset in range(5)])
    assert [r.seq for r in store.records_in_sequence(3)] == [3, 4, 5]
    assert store.record(6) is None and store.record(0) is None
    assert (second := store.record(2)) is not None and second.kafka_offset == 1


def test_leaves_stream_what_each_records_leaf_encodes_from_any_start(store: AuditStore) -> None:
    marked = fact(3).model_copy(update={"confidential_until": datetime(2028, 1, 1).date()})
    stored = store.append_batch([fact(0), fact(1), fact(2), marked])
    leaves = list(store.leaves(2))
    assert [seq for seq, _ in leaves] == [2, 3, 4]
    for (seq, content), record in zip(leaves, stored[1:], strict=True):
        assert record is not None and seq == record.seq
        assert content == leaf_content(record) and leaf_bytes(content) == leaf_bytes(record)
    assert "confidential_until" not in leaves[0][1] and leaves[-1][1]["confidential_until"] == "2028-01-01"
    # the stored leaf hashes, from any index on
    assert [index for index, _ in store.nodes_at(0, 2)] == [2, 3]
    assert [node for _, node in store.nodes_at(0, 2)] == [record_leaf_hash(r) for r in stored[2:] if r]


def test_checkpoints_and_cosignatures_are_kept_beside_the_tree(store: AuditStore) -> None:
    store.append_batch([fact(offset) for offset in range(3)])
    first = StoredCheckpoint(2, root(2, store), "log\n2\nroot\n\n— log sig\n", "2026-11-29T09:00:00+00:00")
    store.add_checkpoint(first)
    store.add_checkpoint(StoredCheckpoint(2, b"x" * 32, "other", "later"))  # one per size: kept first
    store.add_checkpoint(StoredCheckpoint(3, root(3, store), "note 3", "2026-11-29T09:01:00+00:00"))
    assert [c.size for c in store.checkpoints()] == [2, 3] and store.checkpoints()[0] == first
    store.add_cosignature(3, "witness.gm0363", "— witness.gm0363 AAAA")
    store.add_cosignature(3, "witness.gm0363", "— witness.gm0363 BBBB")  # replaced
    store.add_cosignature(3, "witness.riec", "— witness.riec CCCC")
    assert store.cosignatures(3) == {
        "witness.gm0363": "— witness.gm0363 BBBB",
        "witness.riec": "— witness.riec CCCC",
    }
    assert store.cosignatures(2) == {}
    assert verify_store(store).intact


def test_checkpoints_are_looked_up_by_size_the_newest_first_or_from_a_size_on(store: AuditStore) -> None:
    assert store.latest_checkpoint() is None and store.recent_checkpoints(3) == []
    store.append_batch([fact(offset) for offset in range(9)])
    for size in (2, 5, 3, 9):  # kept in any order, as a store restored from a backup may hold them
        store.add_checkpoint(StoredCheckpoint(size, root(size, store), f"note {size}", "now"))
    assert (newest := store.latest_checkpoint()) is not None and newest.note == "note 9"
    assert (third := store.checkpoint(3)) is not None and third.root_hash == root(3, store)
    assert store.checkpoint(4) is None
    assert [c.size for c in store.recent_checkpoints(2)] == [9, 5]
    assert [c.size for c in store.recent_checkpoints(10)] == [9, 5, 3, 2]
    assert [c.size for c in store.checkpoints(after=3)] == [5, 9]
    assert [c.size for c in store.checkpoints()] == [2, 3, 5, 9]


def test_a_checkpoint_that_does_not_match_the_records_fails_verification(store: AuditStore) -> None:
    store.append_batch([fact(offset) for offset in range(3)])
    store.add_checkpoint(StoredCheckpoint(2, b"\x00" * 32, "forged", "now"))
    result = verify_store(store)
    assert not result.intact and "size 2" in (result.problem or "")


def test_a_redelivered_record_is_logged_once(store: AuditStore) -> None:
    assert store.append(fact(7)) is not None
    assert store.append(fact(7)) is None
    assert len(store.records()) == 1


def test_records_of_one_signal_come_in_event_time_order(store: AuditStore) -> None:
    store.append(fact(0, "s-2", seconds=5, topic="exchange.decisions.v1"))
    store.append(fact(0, "s-2", seconds=1))
    store.append(fact(1, "s-3", seconds=3))
    records = store.records(RecordQuery(signal_id="s-2"))
    assert [r.kafka_topic for r in records] == ["signals.accepted.v1", "exchange.decisions.v1"]
    assert records[0].fields == ("category", "summary")


def test_records_can_be_found_by_event_type_subject_and_organisation(store: AuditStore) -> None:
    store.append(fact(0, "s-4"))
    store.append(
        fact(1, "s-5", topic="exchange.decisions.v1").model_copy(
            update={
                "event_type": "nl.safetychain.exchange.decided.v1",
                "target": "riec-amsterdam",
                "subject_pseudonym": "p1",
            }
        )
    )
    decided = store.records(RecordQuery(event_type="nl.safetychain.exchange.decided.v1"))
    assert [r.signal_id for r in decided] == ["s-5"]
    assert [r.signal_id for r in store.records(RecordQuery(subject="p1"))] == ["s-5"]
    assert [r.signal_id for r in store.records(RecordQuery(organisation="riec-amsterdam"))] == ["s-5"]
    assert {r.signal_id for r in store.records(RecordQuery(organisation="gm0363"))} == {"s-4", "s-5"}


def test_a_changed_record_fails_verification_and_is_named(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(4)])
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log_records SET source = 'gm0599' WHERE seq = 3"))
    result = verify_store(database)
    assert not result.intact
    assert result.first_bad_seq == 3


def test_a_deleted_record_fails_verification(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(4)])
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log_records WHERE seq = 2"))
    result = verify_store(database)
    assert not result.intact and result.first_bad_seq == 2


def test_reordered_records_fail_verification_at_the_first_moved_one(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(5)])
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log_records SET seq = 100 WHERE seq = 2"))
        connection.execute(text("UPDATE audit_log_records SET seq = 2 WHERE seq = 4"))
        connection.execute(text("UPDATE audit_log_records SET seq = 4 WHERE seq = 100"))
    result = verify_store(database)
    assert not result.intact and result.first_bad_seq == 2


ORIGIN = "safety-chain.test/audit-log"


def outside_checkpoint(store: AuditStore, size: int) -> Checkpoint:
    """A checkpoint as published on audit.checkpoints.v1, out of the store's reach."""
    return Checkpoint(ORIGIN, size, root(size, store))


def keep_checkpoint(store: AuditStore, size: int) -> None:
    store.add_checkpoint(StoredCheckpoint(size, root(size, store), f"note {size}", "now"))


def rehash_behind_the_logs_back(database: SqlAuditStore) -> None:
    """What someone who can write the database does after rewriting records: recompute every
    stored node from the records, and drop the stored checkpoints that would give it away."""
    tree = InMemoryNodes()
    for record in database.records_in_sequence():
        tree.append_leaf_hash(record_leaf_hash(record))
    with database.engine.begin() as connection:
        connection.execute(audit_nodes.delete())
        connection.execute(audit_checkpoints.delete())
        nodes = [
            {"level": level, "idx": index, "hash": tree.perfect_node(level, index).hex()}
            for level in range(tree.size.bit_length())
            for index in range(tree.size >> level)
        ]
        if nodes:
            connection.execute(audit_nodes.insert(), nodes)


def test_a_cut_tail_shows_against_the_checkpoint_kept_outside_the_store(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(6)])
    keep_checkpoint(database, 6)
    outside = [outside_checkpoint(database, 6)]
    with database.engine.begin() as connection:  # the three newest rows go, and their traces
        connection.execute(text("DELETE FROM audit_log_records WHERE seq > 3"))
    rehash_behind_the_logs_back(database)
    assert verify_store(database).intact, "on its own the store looks whole: the threat is real"
    result = verify_store(database, outside=outside)
    assert not result.intact and result.first_bad_seq == 4, result


def test_a_rewritten_and_rehashed_history_shows_and_the_first_suspect_record_is_named(
    database: SqlAuditStore,
) -> None:
    database.append_batch([fact(offset) for offset in range(5)])
    outside = [outside_checkpoint(database, 1), outside_checkpoint(database, 5)]
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log_records SET source = 'gm0599' WHERE seq = 2"))
    rehash_behind_the_logs_back(database)
    assert verify_store(database).intact
    result = verify_store(database, outside=outside)
    assert not result.intact and result.first_bad_seq == 2, result  # after the last matching one


def test_a_checkpoint_deleted_from_the_store_shows_against_the_topic(database: SqlAuditStore) -> None:
    database.append_batch([fact(offset) for offset in range(5)])
    keep_checkpoint(database, 3)
    keep_checkpoint(database, 5)
    outside = [outside_checkpoint(database, 3), outside_checkpoint(database, 5)]
    assert verify_store(database, outside=outside).intact
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log_checkpoints WHERE size = 3"))
    result = verify_store(database, outside=outside)
    assert not result.intact and "size 3" in (result.problem or "")


def test_verify_checks_each_stored_checkpoints_signature_with_the_log_key(store: AuditStore) -> None:
    log_signer = Signer.generate(ORIGIN)
    store.append_batch([fact(offset) for offset in range(4)])
    genuine = sign_checkpoint(Checkpoint(ORIGIN, 2, root(2, store)), log_signer)
    store.add_checkpoint(StoredCheckpoint(2, root(2, store), genuine, "now"))
    assert verify_store(store, log_key=log_signer.verifier()).intact
    # A checkpoint with the right root, but signed by someone else, is no checkpoint of this log.
    impostor = sign_checkpoint(Checkpoint(ORIGIN, 4, root(4, store)), Signer.generate(ORIGIN))
    store.add_checkpoint(StoredCheckpoint(4, root(4, store), impostor, "now"))
    result = verify_store(store, log_key=log_signer.verifier())
    assert not result.intact and "size 4" in (result.problem or "")


def test_a_log_created_before_confidentiality_existed_gains_the_column_and_still_verifies(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SqlAuditStore(url)
    old.append_batch([fact(offset) for offset in range(5)])
    with old.engine.begin() as connection:
        connection.execute(text("ALTER TABLE audit_log_records DROP COLUMN confidential_until"))
    old.engine.dispose()
    reopened = SqlAuditStore(url)
    assert verify_store(reopened).intact
    marked = fact(5).model_copy(update={"confidential_until": datetime(2028, 1, 1).date()})
    (stored,) = reopened.append_batch([marked])
    assert stored is not None and reopened.record(6) == stored
    assert stored.document()["confidential_until"] == "2028-01-01"
    assert verify_store(reopened).intact


def test_the_lease_is_taken_once_it_expired_renewed_while_held_and_retaken_by_its_own_holder(
    store: AuditStore,
) -> None:
    assert store.lease() is None
    first = store.take_lease("audit-0", 1000.0, 10.0)
    assert first == Takeover(Lease("audit-0", 1, 1010.0), None, 0)
    assert store.take_lease("audit-1", 1005.0, 10.0) is None
    renewed = store.renew_lease(first.lease, 1005.0, 10.0)
    assert renewed == Lease("audit-0", 1, 1015.0) == store.lease()
    assert store.take_lease("audit-1", 1010.0, 10.0) is None  # renewed: not expired yet
    again = store.take_lease("audit-0", 1011.0, 10.0)  # a restart: its own, at once
    assert again is not None and again.lease.epoch == 2 and not again.is_failover
    store.release_lease(again.lease)
    taken = store.take_lease("audit-1", 1012.0, 10.0)
    assert taken is not None and taken.is_failover and taken.lease == Lease("audit-1", 3, 1022.0)
    assert store.renew_lease(again.lease, 1013.0, 10.0) is None


def test_an_append_under_an_epoch_another_replica_took_over_is_refused_whole(store: AuditStore) -> None:
    store.take_lease("audit-0", 1000.0, 10.0)
    store.append_batch([fact(1), fact(2)], {("signals.accepted.v1", 0): 3}, epoch=1)
    takeover = store.take_lease("audit-1", 1010.0, 10.0)
    assert takeover is not None and takeover.continued_from == 2
    with pytest.raises(LeaseLostError):
        store.append_batch([fact(3)], {("signals.accepted.v1", 0): 4}, epoch=1)
    assert store.size() == 2 and store.consumed_offsets() == {("signals.accepted.v1", 0): 3}
    assert [r.seq for r in store.append_batch([fact(3)], epoch=2) if r] == [3]
    assert verify_store(store).intact
