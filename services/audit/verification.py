"""Verify the audit log from its records: recompute the Merkle tree, compare what is stored.

The tree is rebuilt from the records alone (their leaf bytes, services/audit/leaf.py) and held
against every stored node and every stored checkpoint's root. A changed, inserted, deleted or
reordered record changes its leaf hash, or the position of every later one, and is named as the
first record whose recomputed node differs from the stored one. What this cannot see on its own
is a rewrite of records *and* nodes *and* checkpoints together: that needs a checkpoint kept
outside the store (the one on audit.checkpoints.v1, the witnesses' copies), which `verify_against`
takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.audit.leaf import record_leaf_hash
from services.audit.store import AuditStore, StoredCheckpoint
from shared.tlog.checkpoint import Checkpoint, open_checkpoint
from shared.tlog.merkle import InMemoryNodes
from shared.tlog.note import NoteVerifier

Progress = Callable[[int, int], None]
"""Called with (records checked, records in the store) as verification goes."""


@dataclass(frozen=True)
class Verification:
    intact: bool
    records_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    size: int = 0
    root_hash: str | None = None  # hex, of the recomputed tree
    newest_checkpoint: int | None = None  # its size
    witnesses: tuple[str, ...] = ()  # who cosigned the newest checkpoint


@dataclass(frozen=True)
class LastVerification:
    """The newest verification this process ran (the console's integrity page shows it)."""

    at: datetime
    by: str  # the actor who asked
    result: Verification


def recompute(
    store: AuditStore, progress: Progress | None = None
) -> tuple[InMemoryNodes, Verification | None]:
    """The tree of the stored records, and a failed Verification if the records are out of order."""
    total = store.size()
    tree = InMemoryNodes()
    for record in store.records_in_sequence():
        expected = tree.size + 1
        if record["seq"] != expected:
            return tree, Verification(False, tree.size, expected, f"record {expected} is missing")
        tree.append_leaf_hash(record_leaf_hash(record))
        if progress is not None and (tree.size % 1000 == 0 or tree.size == total):
            progress(tree.size, total)
    return tree, None


def verify_store(
    store: AuditStore,
    progress: Progress | None = None,
    outside: Sequence[Checkpoint] = (),
    log_key: NoteVerifier | None = None,
) -> Verification:
    """Recompute the tree from the records; hold every stored node and checkpoint to it (with
    `log_key`, each stored checkpoint's signature too), and the store to the checkpoints kept
    outside it (`outside`: verified, e.g. read back from audit.checkpoints.v1), which whoever
    rewrites the store cannot rewrite."""
    tree, failed = recompute(store, progress)
    if failed is not None:
        return failed
    size = tree.size
    # Leaves first: a record whose recomputed leaf differs from the stored one is the one named.
    # Interior nodes after: a stored node that differs while every leaf matches was itself altered.
    for level in range(max(size, 1).bit_length()):
        expected_count, count = size >> level, 0
        for index, stored in store.nodes_at(level):
            count += 1
            recomputed = tree.perfect_node(level, index) if index < expected_count else None
            if recomputed is None:  # the stored tree covers records the store no longer has
                return Verification(False, size, size + 1, f"record {size + 1} is missing", size)
            if recomputed != stored:
                first = index * 2**level + 1
                what = "record" if level == 0 else f"stored tree node ({level}, {index}) over record"
                return Verification(False, size, first, f"{what} {first} does not match", size)
        if count != expected_count:
            first = count * 2**level + 1
            return Verification(
                False, size, first, f"stored tree nodes are missing from record {first}", size
            )
    checkpoints = store.checkpoints()
    for checkpoint in checkpoints:  # each was signed when issued; its root must still hold
        if checkpoint.size > size:
            return Verification(
                False, size, size + 1, f"checkpoint of size {checkpoint.size} covers missing records", size
            )
        if tree.root(checkpoint.size) != checkpoint.root_hash:
            return Verification(
                False, size, None, f"checkpoint of size {checkpoint.size} does not match the records", size
            )
        if log_key is not None and not _signed(checkpoint, log_key):
            problem = f"the stored checkpoint of size {checkpoint.size} is not the log's signed note for it"
            return Verification(False, size, None, problem, size)
    held = _against_outside(tree, checkpoints, outside)
    if held is not None:
        return held
    newest = checkpoints[-1].size if checkpoints else None
    witnesses = tuple(sorted(store.cosignatures(newest))) if newest is not None else ()
    return Verification(
        True, size, size=size, root_hash=tree.root().hex(), newest_checkpoint=newest, witnesses=witnesses
    )


def _against_outside(
    tree: InMemoryNodes, checkpoints: Sequence[StoredCheckpoint], outside: Sequence[Checkpoint]
) -> Verification | None:
    """A cut tail (an outside checkpoint covers records the store lacks), a rewritten history
    (the records' root at an outside checkpoint's size differs; the first record after the last
    checkpoint that still matches is named: nothing outside holds single records) or a stored
    checkpoint missing or altered."""
    size = tree.size
    in_order = sorted(outside, key=lambda c: c.size)
    last_matching = 0
    # The records first: a cut or rewrite is named by its record, whatever became of the stored
    # checkpoints (the service may even have issued a new one over the damaged store since).
    for checkpoint in in_order:
        if checkpoint.size > size:
            problem = (
                f"the store ends at record {size}; a checkpoint kept outside it covers {checkpoint.size}"
            )
            return Verification(False, size, size + 1, problem, size)
        if tree.root(checkpoint.size) != checkpoint.root_hash:
            first = last_matching + 1
            problem = (
                f"the records differ from the checkpoint of size {checkpoint.size} kept outside the store"
                f" (the first record after the last matching checkpoint, {first}, is named)"
            )
            return Verification(False, size, first, problem, size)
        last_matching = checkpoint.size
    stored = {checkpoint.size: checkpoint.root_hash for checkpoint in checkpoints}
    for checkpoint in in_order:
        kept = stored.get(checkpoint.size)
        # Published before it is kept: only one the store has moved past can be missing.
        missing = kept is None and any(later > checkpoint.size for later in stored)
        if missing or (kept is not None and kept != checkpoint.root_hash):
            problem = f"the checkpoint of size {checkpoint.size} is missing from the store or altered there"
            return Verification(False, size, None, problem, size)
    return None


def _signed(stored: StoredCheckpoint, log_key: NoteVerifier) -> bool:
    try:
        checkpoint = open_checkpoint(stored.note, log_key).checkpoint
    except ValueError:  # NoteError, CheckpointError: not signed by the log key, or malformed
        return False
    return (checkpoint.size, checkpoint.root_hash) == (stored.size, stored.root_hash)
