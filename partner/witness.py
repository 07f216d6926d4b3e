"""Witness the audit log: accept a checkpoint only if it extends the last one, then cosign it.

Any municipality or partner can run a witness (`safety-chain audit witness`, or this class in its
own scheduler). Each run fetches the log's newest checkpoint, checks the audit service's
signature, and holds it to the last checkpoint this witness accepted (kept in a small state
file): a smaller tree is a rollback, another root for the same size a split view, and a larger
tree must come with an RFC 9162 consistency proof from the accepted one, or the log rewrote its
history. Only then does the witness cosign (C2SP tlog-cosignature, with the organisation's own
Ed25519 key) and hand the cosignature to the audit service, which keeps it beside the checkpoint.
A refused checkpoint is never cosigned and never becomes the accepted one.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import Checkpoint, Cosigner, open_checkpoint
from shared.contracts.tlog.note import Signature, Verifier, parse_note


class WitnessRefused(Exception):
    """The log's newest checkpoint does not extend the one this witness accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Witnessed:
    size: int
    root_hash: bytes
    previous_size: int | None  # None: the first checkpoint this witness saw (trusted on first use)


@dataclass(frozen=True)
class AcceptedCheckpoint:
    origin: str
    size: int
    root_hash: bytes

    @classmethod
    def load(cls, path: Path) -> AcceptedCheckpoint | None:
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(raw["origin"], int(raw["size"]), base64.b64decode(raw["root_hash"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        document = {
            "origin": self.origin,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
        }
        draft.write_text(json.dumps(document), encoding="utf-8")
        draft.replace(path)  # atomic: a crash leaves the old state or the new, never half


class Witness:
    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        audit_key: Ed25519PublicKey,
        state_file: Path,
        audit_url: str,
        token: Callable[[], str],
    ) -> None:
        """`name` is the organisation id the audit service knows the witness's key by; `audit_key`
        the audit service's public key (from the registry, never from the log itself). The log's
        origin is taken from its first checkpoint and held to from then on (the state file)."""
        self._cosigner = Cosigner(name, private_key)
        self._audit_key = audit_key
        self._state_file = state_file
        self._audit_url = audit_url.rstrip("/")
        self._token = token

    def _get(self, path: str, **params: int) -> httpx.Response:
        response = httpx.get(
            f"{self._audit_url}{path}",
            params=params,
            headers={"authorization": f"Bearer {self._token()}"},
            timeout=30,
        )
        response.raise_for_status()
        return response

    def check(self, checkpoint: Checkpoint, accepted: AcceptedCheckpoint | None) -> None:
        """Refuse a checkpoint that does not extend the accepted one (raises WitnessRefused)."""
        if accepted is None:
            return
        if checkpoint.origin != accepted.origin:
            raise WitnessRefused(f"another log: {checkpoint.origin!r}, accepted {accepted.origin!r}")
        if checkpoint.size < accepted.size:
            raise WitnessRefused(f"rollback: size {checkpoint.size} after the accepted {accepted.size}")
        if checkpoint.size == accepted.size:
            if checkpoint.root_hash != accepted.root_hash:
                raise WitnessRefused(f"split view: another root for size {checkpoint.size}")
            return
        answer = self._get("/v1/audit/consistency", first=accepted.size, second=checkpoint.size).json()
        proof = [base64.b64decode(node) for node in answer["proof"]]
        try:
            merkle.verify_consistency(
                accepted.size, checkpoint.size, accepted.root_hash, checkpoint.root_hash, proof
            )
        except merkle.ProofError as error:
            raise WitnessRefused(
                f"history rewritten: not consistent with size {accepted.size} ({error})"
            ) from None

    def witness(self) -> Witnessed:
        """One round: fetch, check, accept, cosign, hand over. Raises WitnessRefused (nothing is
        cosigned or accepted then) or an HTTP error (retry later)."""
        signed = self._get("/v1/audit/checkpoint").text
        accepted = AcceptedCheckpoint.load(self._state_file)
        origin = accepted.origin if accepted else signed.split("\n", 1)[0]
        checkpoint = open_checkpoint(signed, Verifier(origin, self._audit_key)).checkpoint
        self.check(checkpoint, accepted)
        AcceptedCheckpoint(checkpoint.origin, checkpoint.size, checkpoint.root_hash).save(self._state_file)
        text, _ = parse_note(signed)
        line = Signature(self._cosigner.name, self._cosigner.key_id, self._cosigner.sign(text.encode())).line
        response = httpx.post(
            f"{self._audit_url}/v1/audit/checkpoint/cosignatures",
            json={"size": checkpoint.size, "cosignature": line},
            headers={"authorization": f"Bearer {self._token()}"},
            timeout=30,
        )
        response.raise_for_status()
        return Witnessed(checkpoint.size, checkpoint.root_hash, accepted.size if accepted else None)
