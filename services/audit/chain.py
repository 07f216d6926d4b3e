"""The hash chain over audit records (pure functions).

record hash = SHA-256( previous hash (32 bytes; zeros for the first record)
                       || canonical JSON of the record without its hash )
Canonical JSON: keys sorted, no spaces, UTF-8. A record's sequence number is inside what is
hashed, so deleting, inserting or reordering records breaks the chain as surely as editing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = bytes(32)


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    content = {key: value for key, value in record.items() if key != "hash"}
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def chain_hash(previous: bytes, record: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(previous + canonical_bytes(record)).digest()


@dataclass(frozen=True)
class Verification:
    intact: bool
    records_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(records: Iterable[Mapping[str, Any]]) -> Verification:
    """Walk the records in sequence order; name the first that does not fit the chain."""
    previous = GENESIS
    expected_seq = 1
    checked = 0
    for record in records:
        seq = int(record["seq"])
        if seq != expected_seq:
            return Verification(False, checked, seq, f"expected seq {expected_seq}, found {seq}")
        if bytes.fromhex(str(record["prev_hash"])) != previous:
            return Verification(False, checked, seq, "prev_hash does not match the previous record")
        computed = chain_hash(previous, record)
        if bytes.fromhex(str(record["hash"])) != computed:
            return Verification(False, checked, seq, "content does not match its hash")
        previous = computed
        expected_seq += 1
        checked += 1
    return Verification(True, checked)
