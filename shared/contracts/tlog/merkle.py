"""RFC 9162 section 2.1 Merkle trees, computed from stored perfect subtrees and never by rehashing the log.

Hashing (RFC 9162 section 2.1.1), SHA-256 throughout:
  leaf hash       SHA-256(0x00 || leaf bytes)
  interior node   SHA-256(0x01 || left child hash || right child hash)
  empty tree      SHA-256("")
The tree over n > 1 leaves splits at k, the largest power of two smaller than n: the left subtree
holds the first k leaves (a perfect tree), the right subtree the other n - k.

Storage model. A *perfect node* (level, index) is the hash of the perfect subtree of 2**level leaves
that starts at leaf index * 2**level; level 0 holds the leaf hashes. A perfect node never changes
once the last of its leaves is appended, so a store keeps exactly these: `completed_nodes` names the
ones an append completes (one leaf hash plus, amortised, one interior node), and the store writes
them and nothing else. Every other node of a tree of any size is a non-perfect right edge, and it is
computed on demand from the at most log2(n) perfect nodes that cover it. So `root`, `inclusion_proof`
and `consistency_proof` read O(log n) perfect nodes, whatever the size of the log.

Proofs are the RFC 9162 ones: the inclusion path of section 2.1.3.1 and the consistency proof of
section 2.1.4.1, hashes ordered as there (leaf to root). The verifiers are the algorithms of
sections 2.1.3.2 and 2.1.4.2, step by step; they raise `ProofError` with a reason and return
nothing when a proof holds, so a forgotten return value can never pass for a verified proof.

Choices where the RFC leaves room, each as transparency-dev/merkle (the Go library behind Trillian,
Tessera and the witness network) decides them:
- A consistency proof *from* the empty tree (first == 0) is refused by the verifier and by the
  builder: every tree extends the empty one, so such a proof proves nothing and a caller treats
  size 0 as a special case instead (RFC 9162 section 2.1.4.2 presumes 0 < first).
- Between equal sizes the proof is empty and holds exactly when the two roots are equal (RFC 9162
  section 2.1.4.1: SUBPROOF(m, D[m], true) = {}).
- Every hash given to a verifier must be 32 bytes; anything else is malformed (Go compares roots of
  any length; we refuse them, see test_tlog_merkle.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256(""), the root of the tree without leaves."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof does not verify, or what was given to check it is malformed; the message says which."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf, as stored at level 0."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class NodeReader(Protocol):
    """Read access to a log's stored perfect nodes."""

    def perfect_node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of 2**level leaves that starts at leaf index * 2**level.

        Level 0 holds the leaf hashes. Only nodes whose leaves have all been appended exist; asking
        for any other node is the caller's bug, and a reader raises (KeyError or LookupError).
        """
        ...


def completed_nodes(leaf_index: int, leaf: bytes, reader: NodeReader) -> list[tuple[int, int, bytes]]:
    """The perfect nodes that appending the leaf hash `leaf` at `leaf_index` completes.

    Returns (level, index, hash) from level 0 (the leaf itself) upwards: one entry per trailing one
    bit of `leaf_index`, plus the leaf. `reader` must hold the nodes of the first `leaf_index` leaves;
    it is asked only for the left siblings on the way up. A store writes exactly these nodes.
    """
    if leaf_index < 0:
        raise ValueError(f"leaf index must not be negative, got {leaf_index}")
    _require_hash_size("leaf hash", leaf, ValueError)
    nodes = [(0, leaf_index, leaf)]
    level, index, current = 0, leaf_index, leaf
    while index & 1:
        current = node_hash(reader.perfect_node(level, index - 1), current)
        level += 1
        index >>= 1
        nodes.append((level, index, current))
    return nodes


def root(size: int, reader: NodeReader) -> bytes:
    """MTH(D[0:size]), the root hash of the tree of the first `size` leaves."""
    if size < 0:
        raise ValueError(f"tree size must not be negative, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return _subtree_hash(0, size, reader)


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, ordered from the leaf's sibling up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")
    siblings: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            siblings.append(_subtree_hash(start + k, start + n, reader))
            n = k
        else:
            siblings.append(_subtree_hash(start, start + k, reader))
            start, n, m = start + k, n - k, m - k
    siblings.reverse()
    return siblings


def consistency_proof(first: int, second: int, reader: NodeReader) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 section 2.1.4.1; empty when first == second."""
    if not 0 < first <= second:
        raise ValueError(f"a consistency proof needs 0 < first <= second, got {first} and {second}")
    # SUBPROOF(m, D[start:start+n], b) walked iteratively: each step appends one subtree hash after
    # the result of the recursive call, so the hashes are collected top-down and emitted reversed.
    collected: list[bytes] = []
    start, n, m, whole_old_tree = 0, second, first, True
    while m != n:
        k = _split(n)
        if m <= k:
            collected.append(_subtree_hash(start + k, start + n, reader))
            n = k
        else:
            collected.append(_subtree_hash(start, start + k, reader))
            start, n, m, whole_old_tree = start + k, n - k, m - k, False
    head = [] if whole_old_tree else [_subtree_hash(start, start + n, reader)]
    return head + collected[::-1]


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with root `root`.

    RFC 9162 section 2.1.3.2. Returns nothing when the proof holds; raises ProofError otherwise.
    """
    _require_hash_size("leaf hash", leaf_hash, ProofError)
    _require_hash_size("root hash", root, ProofError)
    _require_proof_hashes(proof)
    if index < 0 or size < 0:
        raise ProofError(f"leaf index and tree size must not be negative, got {index} and {size}")
    # Step 1.
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    # Steps 2 and 3.
    fn, sn = index, size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            raise ProofError(f"proof has more hashes than the path from leaf {index} in a tree of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    if sn != 0:
        raise ProofError(f"proof has fewer hashes than the path from leaf {index} in a tree of {size}")
    if r != root:
        raise ProofError(f"proof does not lead from leaf {index} to the root of the tree of {size}")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `second` leaves with `second_root` extends the one of `first` with `first_root`.

    RFC 9162 section 2.1.4.2. Returns nothing when the proof holds; raises ProofError otherwise.
    """
    _require_hash_size("first root hash", first_root, ProofError)
    _require_hash_size("second root hash", second_root, ProofError)
    _require_proof_hashes(proof)
    if first < 0 or second < 0:
        raise ProofError(f"tree sizes must not be negative, got {first} and {second}")
    if first > second:
        raise ProofError(f"first tree size {first} is larger than second tree size {second}")
    if first == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing: every tree extends it")
    if first == second:
        if proof:
            raise ProofError(f"proof between equal tree sizes must be empty, got {len(proof)} hashes")
        if first_root != second_root:
            raise ProofError(f"two different roots for the same tree size {first}")
        return
    # Step 1.
    if not proof:
        raise ProofError(f"empty proof between tree sizes {first} and {second}")
    # Step 2.
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # Steps 3 and 4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"proof has more hashes than needed between tree sizes {first} and {second}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise ProofError(f"proof has fewer hashes than needed between tree sizes {first} and {second}")
    if fr != first_root:
        raise ProofError(f"proof does not lead to the root of the tree of {first}")
    if sr != second_root:
        raise ProofError(f"proof does not lead to the root of the tree of {second}")


class InMemoryNodes:
    """A NodeReader backed by a dict, with an append helper: for tests and the in-memory store."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def perfect_node(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise KeyError(
                f"no perfect node at level {level}, index {index} in a log of {self._size} leaves"
            ) from None

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append one leaf hash; returns its index."""
        index = self._size
        for level, node_index, node in completed_nodes(index, leaf, self):
            self._nodes[(level, node_index)] = node
        self._size += 1
        return index

    def append(self, data: bytes) -> int:
        """Append the leaf with these bytes (hashed with `leaf_hash`); returns its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def root(self, size: int | None = None) -> bytes:
        """Root of the first `size` leaves (default: all of them)."""
        return root(self._size if size is None else size, self)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_hash(start: int, end: int, reader: NodeReader) -> bytes:
    """MTH(D[start:end]) for a subtree of an RFC 9162 tree, from the perfect nodes that cover it.

    Such a subtree starts at a multiple of the smallest power of two >= end - start, so it is
    covered by one perfect node per one bit of end - start, largest first; its RFC shape is those
    nodes folded from the right (each split puts the largest perfect part on the left).
    """
    covering: list[bytes] = []
    position, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        covering.append(reader.perfect_node(level, position >> level))
        position += 1 << level
        remaining -= 1 << level
    result = covering.pop()
    while covering:
        result = node_hash(covering.pop(), result)
    return result


def _require_hash_size(what: str, value: bytes, error: type[ValueError]) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} must be {HASH_SIZE} bytes, got {len(value)}")
