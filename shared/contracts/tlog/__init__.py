"""Transparency-log primitives: pure, standalone, no I/O.

- `merkle`: RFC 9162 section 2.1 Merkle tree hashing, proofs computed from stored perfect
  subtrees, and the RFC's proof verifiers.
- `note`: C2SP signed notes (c2sp.org/signed-note) with Ed25519.
- `checkpoint`: C2SP checkpoints (c2sp.org/tlog-checkpoint), witness cosignatures
  (c2sp.org/tlog-cosignature) and offline proof files (c2sp.org/tlog-proof).

Everything here is usable by anyone verifying offline: the record bytes, a proof and the keys.
"""
