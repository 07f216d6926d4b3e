"""Verify the audit log from its records: recompute the Merkle tree, compare what is stored.

The tree is rebuilt from the records alone (their leaf bytes, services/audit/log/leaf.py) and held
against every stored node and every stored checkpoint's root. A changed, inserted, deleted or
reordered record changes its leaf hash, or the position of every later one, and is named as the
first record whose recomputed node differs from the stored one; so is a changed stored leaf hash
(a level-0 node), and a changed interior node by its first record. What this cannot see on its
own is a rewrite of records *and* nodes *and* checkpoints together: that needs a checkpoint kept
outside the store (the one on audit.checkpoints.v1, the witnesses' copies), which `verify_store`
takes.

A full run costs a few microseconds a record: the store hands over each record's leaf content as
plain values (`AuditStore.leaves`), which the C JSON encoder writes as the very bytes the append
wrote (leaf.fast, leaf.canonical) to be hashed; the tree is computed a level at a time and each
stored level compared as a whole. Every SAMPLE_EVERY-th record is also encoded by the reference
RFC 8785 implementation, and a deep run (`deep=True`) encodes every record with it.

Verifying again need not read the whole log again (`verify_since`): from the tree head the last
intact verification established (its size, root and the few subtree roots on its right edge),
only the records appended since are read and hashed; the stored tree must extend the verified
one (an RFC 9162 consistency proof, from the stored nodes, between the verified root and the
recomputed one), and every new checkpoint, stored or kept outside, must match the recomputed
root at its size. What this leaves unseen is a record in the verified prefix rewritten while its
stored leaf hash is kept: no proof or checkpoint anyone is served changes, but the record's bytes
no longer match its inclusion proof; likewise a stored checkpoint issued before the head and
changed or removed since. Each run reads only what is new: the stored checkpoints issued since
the head (looked up by size, never all listed), the outside ones not yet held to the tree, the
records and their stored leaf hashes after the head. The full verification (`verify_store`: the
CLI's `audit verify --database`, the first verification after a start) reads every record.
`LogVerifier` runs one verification at a time, off the event loop, for every caller.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from services.audit.log.leaf import Content, fast, plain, reference
from services.audit.log.store import AuditStore, StoredCheckpoint
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import Checkpoint, open_checkpoint
from shared.contracts.tlog.merkle import EMPTY_ROOT, leaf_hash, node_hash
from shared.contracts.tlog.note import NoteVerifier
from shared.plumbing.metrics import AUDIT_VERIFICATIONS, AUDIT_VERIFIED_RECORDS

Progress = Callable[[int, int], None]
"""Called with (records checked, records in the store) as verification goes."""

SAMPLE_EVERY: Final = 4096
"""A full run also encodes every this-many-th record with the reference RFC 8785 encoder."""
COUNT_EVERY: Final = 1000  # records read, for the progress callback and the metric


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
    kind: Literal["full", "incremental"] = "full"
    records_read: int = 0  # records read from the store by this run


@dataclass
class CompactRange:
    """The tree over the first `size` leaves, held as the roots of the perfect subtrees on its
    right edge (one per set bit of `size`, largest first): enough to append leaves and to compute
    the root, in O(log size) space."""

    size: int = 0
    subtrees: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, tree: LevelTree) -> CompactRange:
        subtrees, start = [], 0
        for level in reversed(range(tree.size.bit_length())):
            if tree.size >> level & 1:
                subtrees.append(tree.perfect_node(level, start >> level))
                start += 1 << level
        return cls(tree.size, subtrees)

    def append(self, leaf: bytes) -> None:
        node, level = leaf, 0
        while self.size >> level & 1:  # each completed pair merges into the subtree above
            node = node_hash(self.subtrees.pop(), node)
            level += 1
        self.subtrees.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.subtrees:
            return EMPTY_ROOT
        node = self.subtrees[-1]
        for left in reversed(self.subtrees[:-1]):
            node = node_hash(left, node)
        return node

    def copy(self) -> CompactRange:
        return CompactRange(self.size, list(self.subtrees))


@dataclass(frozen=True)
class VerifiedHead:
    """What the last intact verification established, to verify from next time: the tree over
    the first `tree.size` records, the root of every checkpoint (stored or kept outside) it held
    to that tree, and the largest stored checkpoint it held (every later one is new to the
    next run)."""

    tree: CompactRange
    checkpoints: Mapping[int, bytes]
    stored_through: int = 0

    @property
    def size(self) -> int:
        return self.tree.size


class LevelTree:
    """The perfect nodes over a list of leaf hashes, a level at a time (level 0: the leaf
    hashes; each level one pass over the one below), as a merkle.NodeReader."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.levels = [leaves]
        below, sha256, prefix = leaves, hashlib.sha256, b"\x01"  # RFC 9162 interior node
        while len(below) > 1:
            pairs = zip(below[::2], below[1::2], strict=False)  # an odd last node has no pair yet
            below = [sha256(prefix + left + right).digest() for left, right in pairs]
            self.levels.append(below)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def level(self, level: int) -> list[bytes]:
        """The perfect nodes of `level`, by index."""
        return self.levels[level] if level < len(self.levels) else []

    def perfect_node(self, level: int, index: int) -> bytes:
        nodes = self.level(level)
        if not 0 <= index < len(nodes):
            raise KeyError(f"no perfect node at level {level}, index {index} in a log of {self.size} leaves")
        return nodes[index]

    def root(self, size: int | None = None) -> bytes:
        """Root of the first `size` leaves (default: all of them)."""
        return merkle.root(self.size if size is None else size, self)


def _leaf(content: Content, encode: Callable[[Content], bytes]) -> bytes | None:
    """The leaf hash of a record's content; None when it cannot be a leaf at all (a value RFC
    8785 cannot write: only a changed record holds one, its append would have been refused)."""
    try:
        return leaf_hash(encode(content))
    except (ValueError, TypeError):
        return None


def _fast_disagrees(content: Content) -> bool:
    """Whether the C encoder writes other bytes than the reference for content it is trusted
    with (leaf.canonical): never, unless the standard library's JSON changed."""
    return plain(content) and _leaf(content, fast) != _leaf(content, reference)


def recompute(
    store: AuditStore, progress: Progress | None = None, deep: bool = False
) -> tuple[LevelTree, Verification | None]:
    """The tree of the stored records, and a failed Verification if the records are out of order
    (or one cannot be a leaf, or the fast encoder and the reference disagree on a sampled one).
    `deep`: every record encoded by the reference RFC 8785 implementation."""
    total = store.size()
    encode = reference if deep else fast
    hashes: list[bytes] = []
    counted = 0
    failed: Verification | None = None
    for seq, content in store.leaves():
        checked = len(hashes)
        expected = checked + 1
        if seq != expected:
            failed = Verification(False, checked, expected, f"record {expected} is missing")
            break
        leaf = _leaf(content, encode)
        if leaf is None:
            failed = Verification(False, checked, expected, f"record {expected} does not match")
            break
        if not deep and expected % SAMPLE_EVERY == 0 and _fast_disagrees(content):
            problem = f"record {expected}'s leaf differs from the reference RFC 8785 encoding: verify deep"
            failed = Verification(False, checked, expected, problem)
            break
        hashes.append(leaf)
        if expected % COUNT_EVERY == 0:
            AUDIT_VERIFIED_RECORDS.inc(expected - counted)
            counted = expected
            if progress is not None:
                progress(expected, total)
    read = len(hashes) + (1 if failed is not None else 0)
    AUDIT_VERIFIED_RECORDS.inc(read - counted)
    if progress is not None and failed is None and hashes and len(hashes) % COUNT_EVERY:
        progress(len(hashes), total)
    return LevelTree(hashes), failed


def verify_store(
    store: AuditStore,
    progress: Progress | None = None,
    outside: Sequence[Checkpoint] = (),
    log_key: NoteVerifier | None = None,
    deep: bool = False,
) -> Verification:
    """Recompute the tree from the records; hold every stored node and checkpoint to it (with
    `log_key`, each stored checkpoint's signature too), and the store to the checkpoints kept
    outside it (`outside`: verified, e.g. read back from audit.checkpoints.v1), which whoever
    rewrites the store cannot rewrite. `deep`: every leaf encoded by the reference RFC 8785
    implementation (about five times slower), not only a sample."""
    return verify_fully(store, progress, outside, log_key, deep)[0]


def verify_fully(
    store: AuditStore,
    progress: Progress | None = None,
    outside: Sequence[Checkpoint] = (),
    log_key: NoteVerifier | None = None,
    deep: bool = False,
) -> tuple[Verification, VerifiedHead | None]:
    """`verify_store`, and when the log is intact the head to verify from next time."""
    tree, failed = recompute(store, progress, deep)
    if failed is not None:
        return failed, None
    checked = _check_tree(store, tree, outside, log_key)
    if not checked.intact:
        return checked, None
    stored = [c for c in store.checkpoints() if c.size <= tree.size]
    roots = {size: root for size, root in _heads(stored, outside) if size <= tree.size}
    through = stored[-1].size if stored else 0
    return checked, VerifiedHead(CompactRange.of(tree), roots, through)


def _heads(stored: Sequence[StoredCheckpoint], outside: Sequence[Checkpoint]) -> list[tuple[int, bytes]]:
    """(size, root) of every checkpoint, stored or kept outside."""
    return [(c.size, c.root_hash) for c in stored] + [(c.size, c.root_hash) for c in outside]


def _check_tree(
    store: AuditStore, tree: LevelTree, outside: Sequence[Checkpoint], log_key: NoteVerifier | None
) -> Verification:
    size = tree.size
    now = _StoreSize(store)
    # Leaves first: a record whose recomputed leaf differs from the stored one is the one named.
    # Interior nodes after: a stored node that differs while every leaf matches was itself altered.
    for level in range(max(size, 1).bit_length()):
        expected_count, count = size >> level, 0
        stored_level = list(store.nodes_at(level))
        if _same_level(stored_level, tree.level(level), expected_count, level, now):
            continue  # the whole level as recomputed; else the walk below names what differs
        for index, stored in stored_level:
            if index >= expected_count:
                if now.covers((index + 1) << level):
                    continue  # appended with its records after this run read them: the next run's
                # the stored tree covers records the store no longer has
                return Verification(False, size, size + 1, f"record {size + 1} is missing", size)
            count += 1
            recomputed = tree.perfect_node(level, index)
            if recomputed != stored:
                first = index * 2**level + 1
                what = "record" if level == 0 else f"stored tree node ({level}, {index}) over record"
                return Verification(False, size, first, f"{what} {first} does not match", size)
        if count != expected_count:
            first = count * 2**level + 1
            return Verification(
                False, size, first, f"stored tree nodes are missing from record {first}", size
            )
    # a checkpoint issued after this run read the records is the next run's
    checkpoints = [c for c in store.checkpoints() if c.size <= size or not now.covers(c.size)]
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
    return _intact(store, checkpoints[-1] if checkpoints else None, size, tree.root(), size)


def _same_level(
    stored: list[tuple[int, bytes]], computed: list[bytes], expected: int, level: int, now: _StoreSize
) -> bool:
    """Whether a level's stored nodes are exactly the recomputed ones, in one comparison; more
    nodes only where their records were appended after the run read them."""
    head = stored[:expected]
    if len(head) != expected or [node for _, node in head] != computed[:expected]:
        return False
    if [index for index, _ in head] != list(range(expected)):
        return False
    return all(now.covers((index + 1) << level) for index, _ in stored[expected:])


class _StoreSize:
    """The store's size as it is now, read again only when a question needs a larger one: the
    log may grow while a run verifies what it read. A node or checkpoint is stored with, or after,
    the records it covers, so one beyond the run's records is the next run's exactly when the
    store now holds those records, and a cut tail otherwise."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._known = 0

    def covers(self, size: int) -> bool:
        if self._known < size:
            self._known = self._store.size()
        return self._known >= size


def _intact(
    store: AuditStore, newest: StoredCheckpoint | None, size: int, root: bytes, checked: int
) -> Verification:
    newest_size = newest.size if newest is not None else None
    witnesses = tuple(sorted(store.cosignatures(newest_size))) if newest_size is not None else ()
    return Verification(
        True, checked, size=size, root_hash=root.hex(), newest_checkpoint=newest_size, witnesses=witnesses
    )


def verify_since(
    store: AuditStore,
    head: VerifiedHead,
    outside: Sequence[Checkpoint] = (),
    log_key: NoteVerifier | None = None,
) -> tuple[Verification, VerifiedHead | None] | None:
    """Verify only what was appended since `head`, as the module's docstring says: the result and
    the new head (None when not intact), or None when this cannot be decided from the head (the
    store shrank, or a checkpoint at or below the head's size is new or changed): then verify
    fully, which names what is wrong."""
    size = store.size()
    new_stored = store.checkpoints(after=head.stored_through)  # issued since the head's run
    new_outside = [c for c in outside if head.checkpoints.get(c.size) != c.root_hash]
    heads = _heads(new_stored, new_outside)
    if size < head.size or not all(_within(head, store, n, root) for n, root in heads if n <= head.size):
        return None
    tree = head.tree.copy()
    wanted = {n for n, _ in heads if head.size < n <= size}
    roots: dict[int, bytes] = {}
    stored_leaves = store.nodes_at(0, head.size)
    read = 0
    try:
        for seq, content in store.leaves(head.size + 1):
            if tree.size == size:
                break  # appended while this runs: the next verification's
            read += 1
            expected = tree.size + 1
            if seq != expected:
                return Verification(False, tree.size, expected, f"record {expected} is missing", size), None
            leaf = _leaf(content, fast)
            index, stored_leaf = next(stored_leaves, (None, b""))
            if index != tree.size:
                return None  # a stored node is missing: the full run says from where
            if stored_leaf != leaf or leaf is None:
                problem = f"record {expected} does not match"
                return Verification(False, tree.size, expected, problem, size), None
            tree.append(leaf)
            if tree.size in wanted:
                roots[tree.size] = tree.root()
    finally:
        AUDIT_VERIFIED_RECORDS.inc(read)
        _close(stored_leaves)
    read = tree.size  # the prefix verified before, and what was read now
    if tree.size != size:
        first = tree.size + 1
        return Verification(False, read, first, f"record {first} is missing", size), None
    root = tree.root()
    now = _StoreSize(store)
    if head.size and size > head.size:
        # the stored tree extends the verified one: nothing before the head was rewritten with its nodes
        try:
            merkle.verify_consistency(
                head.size, size, head.tree.root(), root, merkle.consistency_proof(head.size, size, store)
            )
        except (merkle.ProofError, KeyError):
            problem = f"the stored tree does not extend the tree verified at size {head.size}"
            return Verification(False, read, None, problem, size), None
    for checkpoint in new_stored:
        if checkpoint.size <= head.size:
            continue  # a tree head of the verified tree (held above)
        if checkpoint.size > size:
            if now.covers(checkpoint.size):
                continue  # issued after this run read the records: the next run's
            problem = f"checkpoint of size {checkpoint.size} covers missing records"
            return Verification(False, read, size + 1, problem, size), None
        if roots[checkpoint.size] != checkpoint.root_hash:
            problem = f"checkpoint of size {checkpoint.size} does not match the records"
            return Verification(False, read, None, problem, size), None
        if log_key is not None and not _signed(checkpoint, log_key):
            problem = f"the stored checkpoint of size {checkpoint.size} is not the log's signed note for it"
            return Verification(False, read, None, problem, size), None
    newest = new_stored[-1] if new_stored else store.checkpoint(head.stored_through)
    for kept in new_outside:
        # published before it is kept: only one the store has moved past can be missing
        moved_past = newest is not None and newest.size > kept.size
        if moved_past and store.checkpoint(kept.size) is None:
            problem = f"the checkpoint of size {kept.size} is missing from the store or altered there"
            return Verification(False, read, None, problem, size), None
        if kept.size <= head.size:
            continue  # the verified tree's own (checked above)
        if kept.size > size:
            problem = f"the store ends at record {size}; a checkpoint kept outside it covers {kept.size}"
            return Verification(False, read, size + 1, problem, size), None
        if roots[kept.size] != kept.root_hash:
            # which record differs is for the full verification to name: it reads them all
            return None
    below = {n: root for n, root in heads if n <= head.size}  # tree heads of the verified tree
    verified = {**head.checkpoints, **below, **roots}
    held = [c.size for c in new_stored if c.size <= size]
    through = max(held, default=head.stored_through)
    return _intact(store, newest, size, root, size), VerifiedHead(tree, verified, through)


def _close(nodes: Iterator[tuple[int, bytes]]) -> None:
    """End a stream of stored nodes read part of the way (its connection goes back to the pool)."""
    close = getattr(nodes, "close", None)
    if close is not None:
        close()


def _within(head: VerifiedHead, store: AuditStore, size: int, root: bytes) -> bool:
    """Whether a checkpoint of at most the head's size is a tree head of the verified tree: the
    head's own, one held to it before, or (issued while the last run ran) one the stored nodes
    prove the verified root extends."""
    if size == head.size:
        return root == head.tree.root()
    if head.checkpoints.get(size) == root:
        return True
    try:
        proof = merkle.consistency_proof(size, head.size, store)
        merkle.verify_consistency(size, head.size, root, head.tree.root(), proof)
    except (merkle.ProofError, KeyError, ValueError):
        return False
    return True


Outside = Callable[[], Awaitable[Sequence[Checkpoint]]]
"""Reads the checkpoints kept outside the store (audit.checkpoints.v1), verified."""


class LogVerifier:
    """One verification of the log at a time, shared by whoever asks while it runs (the HTTP
    endpoint, the console's "verify now"): a caller arriving during a run waits for that run's
    result and never starts another. Each run reads the outside checkpoints, then verifies in a
    worker thread (never on the event loop): from the last verified head when there is one, fully
    otherwise (the first run of the process, after a failure, or when the head cannot decide)."""

    def __init__(self, store: AuditStore, outside: Outside, log_key: NoteVerifier | None) -> None:
        self._store = store
        self._outside = outside
        self._log_key = log_key
        self._head: VerifiedHead | None = None
        self._running: asyncio.Task[LastVerification] | None = None
        self.last: LastVerification | None = None

    async def verify(self, actor: str) -> LastVerification:
        # No await between the check and the start: on one event loop no second run can begin.
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(actor), name="audit-verification")
        # shielded: a caller that goes away does not cancel the run the others wait for
        return await asyncio.shield(self._running)

    async def _run(self, actor: str) -> LastVerification:
        outside = list(await self._outside())
        kind, result, head = await asyncio.to_thread(self._verify, outside)
        read = result.records_checked - (self._head.size if kind == "incremental" and self._head else 0)
        self._head = head
        AUDIT_VERIFICATIONS.labels(kind, "intact" if result.intact else "failed").inc()
        self.last = LastVerification(datetime.now(UTC), actor, result, kind, read)
        return self.last

    def _verify(
        self, outside: Sequence[Checkpoint]
    ) -> tuple[Literal["full", "incremental"], Verification, VerifiedHead | None]:
        if self._head is not None:
            since = verify_since(self._store, self._head, outside, self._log_key)
            if since is not None and (since[0].intact or since[0].first_bad_seq is not None):
                return "incremental", *since
            if since is not None:
                # Not intact, but no record named (the stored tree does not extend the verified
                # one): the full run names the record if the store or the outside checkpoints can;
                # if the store agrees with itself and them, the verified head still caught it.
                full = verify_fully(self._store, None, outside, self._log_key)
                return ("full", *full) if not full[0].intact else ("incremental", *since)
        return "full", *verify_fully(self._store, None, outside, self._log_key)


def _against_outside(
    tree: LevelTree, checkpoints: Sequence[StoredCheckpoint], outside: Sequence[Checkpoint]
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
    newest = max(stored, default=0)
    for checkpoint in in_order:
        kept = stored.get(checkpoint.size)
        # Published before it is kept: only one the store has moved past can be missing.
        missing = kept is None and newest > checkpoint.size
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
