"""One record's proof of inclusion, as a privacy officer hands it to a court or a citizen.

The newest checkpoint that covers the record, with its witnesses' cosignatures, and the record's
inclusion path to it, as a C2SP tlog-proof file whose extra data is the record's exact leaf
bytes: checkable offline with the audit service's public key (`safety-chain audit
check-proof`). A proof is checked here before it is handed out.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.audit.log.leaf import leaf_bytes
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore, StoredCheckpoint
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import VerifiedProof, build_proof_file, verify_proof_file
from shared.contracts.tlog.note import Verifier


class NotYetProvable(LookupError):
    """No checkpoint covers the record yet (one is issued within seconds)."""


@dataclass(frozen=True)
class RecordProof:
    record: AuditRecord
    leaf: bytes
    path: list[bytes]
    checkpoint: StoredCheckpoint
    signed_checkpoint: str  # the note with its cosignatures
    file: str  # the tlog-proof
    verified: VerifiedProof

    @property
    def filename(self) -> str:
        return f"audit-record-{self.record.seq}.tlog-proof"


def cosigned(store: AuditStore, checkpoint: StoredCheckpoint) -> str:
    """The checkpoint's note with every cosignature line witnesses gave it."""
    lines = store.cosignatures(checkpoint.size)
    return checkpoint.note + "".join(
        line if line.endswith("\n") else line + "\n" for _, line in sorted(lines.items())
    )


def prove(store: AuditStore, record: AuditRecord, log_key: Verifier) -> RecordProof:
    """The proof of `record` in the newest checkpoint (NotYetProvable when none covers it)."""
    newest = store.latest_checkpoint()
    if newest is None or newest.size < record.seq:
        raise NotYetProvable(f"no checkpoint covers record {record.seq} yet")
    leaf = leaf_bytes(record)
    path = merkle.inclusion_proof(record.seq - 1, newest.size, store)
    signed = cosigned(store, newest)
    text = build_proof_file(record.seq - 1, path, signed, extra=leaf)
    verified = verify_proof_file(text, leaf, log_key)  # never hand out a proof that does not hold
    return RecordProof(record, leaf, path, newest, signed, text, verified)
