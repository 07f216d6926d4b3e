"""The running audit service commits to its log with signed checkpoints (real broker, services).

Every organisation can fetch the newest one; it is a C2SP note the audit service's key signs, its
root is the root of the records, and the same note is on audit.checkpoints.v1, outside the store.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from partner.witness import AcceptedCheckpoint, Witness, WitnessRefused
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.contracts.tlog import merkle
from shared.contracts.tlog.checkpoint import Checkpoint, CosignatureVerifier, open_checkpoint
from shared.contracts.tlog.note import Verifier
from shared.plumbing.policy import Role
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.e2e.test_signal_flow import domestic_violence_signal, run_cli
from tests.polling import eventually

ORIGIN = "safety-chain.local/audit-log"  # the default origin (SC_AUDIT_LOG_ORIGIN)


def newest_checkpoint(stack: Stack, organisation: str, *roles: Role) -> httpx.Response:
    return httpx.get(
        f"{stack.url('audit')}/v1/audit/checkpoint", headers=stack.bearer(organisation, *roles), timeout=30
    )


def test_a_partner_fetches_a_signed_checkpoint_that_commits_to_the_records(stack: Stack) -> None:
    assert stack.post_signal(domestic_violence_signal()).status_code == 202
    audit_key = Registry.load(CONFIG_DIR, KeyRing(stack.keys_dir, generate_missing=False)).ed25519_public(
        "audit"
    )

    def covering_records() -> httpx.Response | None:
        response = newest_checkpoint(stack, "veilig-thuis-amsterdam", Role.RECIPIENT)
        return response if response.status_code == 200 else None

    response = eventually(covering_records)
    assert response.headers["content-type"].startswith("text/plain")
    opened = open_checkpoint(response.text, Verifier(ORIGIN, audit_key))
    assert opened.checkpoint.origin == ORIGIN and opened.checkpoint.size >= 1

    # The same note is on the topic, outside the audit store.
    def published() -> list[str]:
        return [
            json.loads(r.value or b"{}")["note"]
            for r in stack.read_topic("audit.checkpoints.v1")
            if json.loads(r.value or b"{}")["size"] == opened.checkpoint.size
        ]

    assert response.text.startswith(eventually(published)[0])

    # And verify, recomputing the tree from the records, holds the stored checkpoints to them.
    verified = stack.verify_audit()
    assert verified.status_code == 200 and verified.json()["intact"] is True, verified.text


def test_a_record_proves_its_inclusion_and_the_log_its_consistency_against_a_checkpoint(
    stack: Stack,
) -> None:
    response = stack.post_signal(domestic_violence_signal())
    signal_id = response.json()["signal_id"]
    (record, *_) = eventually(lambda: stack.audit_records(signal_id=signal_id))
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    audit_key = Registry.load(CONFIG_DIR, keys).ed25519_public("audit")

    def checkpoint_covering(at_least: int) -> Checkpoint | None:
        fetched = newest_checkpoint(stack, "gm0363", Role.PUBLISHER)
        if fetched.status_code != 200:
            return None
        opened = open_checkpoint(fetched.text, Verifier(ORIGIN, audit_key)).checkpoint
        return opened if opened.size >= at_least else None

    checkpoint = eventually(lambda: checkpoint_covering(record["seq"]))
    officer = stack.bearer("safety-chain", Role.PRIVACY_OFFICER)
    answer = httpx.get(
        f"{stack.url('audit')}/v1/audit/records/{record['seq']}/inclusion",
        params={"tree_size": checkpoint.size},
        headers=officer,
        timeout=30,
    ).json()
    leaf = base64.b64decode(answer["leaf"])
    assert json.loads(leaf)["seq"] == record["seq"] and json.loads(leaf)["signal_id"] == signal_id
    proof = [base64.b64decode(node) for node in answer["proof"]]
    merkle.verify_inclusion(
        merkle.leaf_hash(leaf), answer["leaf_index"], checkpoint.size, proof, checkpoint.root_hash
    )
    with pytest.raises(merkle.ProofError):  # another record's bytes do not prove
        merkle.verify_inclusion(
            merkle.leaf_hash(leaf.replace(b"gm0363", b"gm0518")),
            answer["leaf_index"],
            checkpoint.size,
            proof,
            checkpoint.root_hash,
        )

    # A partner's officer may not read a record it is no party to; a witness may not read leaves at all.
    foreign = httpx.get(
        f"{stack.url('audit')}/v1/audit/records/{record['seq']}/inclusion",
        headers=stack.bearer("riec-amsterdam", Role.PRIVACY_OFFICER),
        timeout=30,
    )
    assert foreign.status_code in (403, 404)

    # Later records extend the checkpoint: the consistency proof holds, from a partner's view.
    assert stack.post_signal(domestic_violence_signal()).status_code == 202
    later = eventually(lambda: checkpoint_covering(checkpoint.size + 1))
    consistency = httpx.get(
        f"{stack.url('audit')}/v1/audit/consistency",
        params={"first": checkpoint.size, "second": later.size},
        headers=stack.bearer("veilig-thuis-amsterdam", Role.RECIPIENT),
        timeout=30,
    ).json()
    merkle.verify_consistency(
        checkpoint.size,
        later.size,
        checkpoint.root_hash,
        later.root_hash,
        [base64.b64decode(node) for node in consistency["proof"]],
    )


def test_an_officer_hands_out_one_record_with_a_proof_anyone_checks_offline(
    stack: Stack, tmp_path: Path
) -> None:
    response = stack.post_signal(domestic_violence_signal())
    signal_id = response.json()["signal_id"]
    (record, *_) = eventually(lambda: stack.audit_records(signal_id=signal_id))
    eventually(
        lambda: (
            (fetched := newest_checkpoint(stack, "gm0363", Role.PUBLISHER)).status_code == 200
            and int(fetched.text.split("\n")[1]) >= record["seq"]
        )
    )
    proof_file = tmp_path / "record.tlog-proof"
    proved = run_cli(stack, "audit", "prove", str(record["seq"]), "--out", str(proof_file))
    assert proved.returncode == 0, proved.stderr
    assert proof_file.read_text().startswith("c2sp.org/tlog-proof@v1\n")

    checked = run_cli(stack, "audit", "check-proof", str(proof_file))
    assert checked.returncode == 0, checked.stderr
    verdict = json.loads(checked.stdout)
    assert verdict["verified"] is True and verdict["seq"] == record["seq"]
    assert verdict["record"]["signal_id"] == signal_id

    # The record's bytes changed in the file (another target): the proof no longer holds.
    lines = proof_file.read_text().split("\n")
    (extra_at,) = [i for i, line in enumerate(lines) if line.startswith("extra ")]
    leaf = base64.b64decode(lines[extra_at].removeprefix("extra "))
    altered = leaf.replace(b'"source":"', b'"source":"x', 1)
    lines[extra_at] = "extra " + base64.b64encode(altered).decode()
    proof_file.write_text("\n".join(lines))
    refused = run_cli(stack, "audit", "check-proof", str(proof_file))
    assert refused.returncode == 1 and json.loads(refused.stderr)["verified"] is False


def settled_checkpoint(stack: Stack, audit_key: Ed25519PublicKey) -> Checkpoint:
    """The newest checkpoint once it covers the whole log and the log stopped growing (the same
    size in two polls 1.5 s apart)."""
    sizes: list[int] = []

    def settled() -> Checkpoint | None:
        verified = stack.verify_audit().json()
        if verified["newest_checkpoint"] != verified["size"]:
            sizes.clear()
            return None
        sizes.append(verified["size"])
        if len(sizes) < 2 or sizes[-2] != sizes[-1]:
            return None
        fetched = newest_checkpoint(stack, "gm0363", Role.PUBLISHER)
        checkpoint = open_checkpoint(fetched.text, Verifier(ORIGIN, audit_key)).checkpoint
        return checkpoint if checkpoint.size == sizes[-1] else None

    return eventually(settled, timeout=60, interval=1.5)


def test_a_witness_cosigns_only_a_checkpoint_that_extends_the_one_it_accepted(
    stack: Stack, tmp_path: Path
) -> None:
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    registry = Registry.load(CONFIG_DIR, keys)
    audit_key = registry.ed25519_public("audit")
    vt = "veilig-thuis-amsterdam"
    state = tmp_path / "vt-witness.json"
    witness = Witness(
        vt,
        keys.ed25519_private(vt),
        audit_key,
        state,
        stack.url("audit"),
        lambda: stack.token(vt, Role.RECIPIENT, audience=("audit",)),
    )
    assert stack.post_signal(domestic_violence_signal()).status_code == 202
    first = settled_checkpoint(stack, audit_key)
    done = witness.witness()
    assert done.previous_size is None and done.size == first.size  # trusted on first use

    # The audit service keeps the cosignature beside the checkpoint; it verifies with VT's key.
    served = newest_checkpoint(stack, "gm0363", Role.PUBLISHER).text
    cosigners = [CosignatureVerifier(vt, registry.ed25519_public(vt))]
    assert open_checkpoint(served, Verifier(ORIGIN, audit_key), cosigners).witnesses == (vt,)

    # The log grows: the next checkpoint is accepted with a consistency proof from the first.
    assert stack.post_signal(domestic_violence_signal()).status_code == 202

    def grown() -> Checkpoint | None:
        newest = settled_checkpoint(stack, audit_key)
        return newest if newest.size > first.size else None

    second = eventually(grown)
    assert witness.witness().previous_size == first.size

    # A rollback, a split view and a rewritten history are refused, and nothing is accepted.
    accepted = state.read_text()
    forged_root = bytes(32)
    for size, root, refusal in (
        (second.size + 5, second.root_hash, "rollback"),
        (second.size, forged_root, "split view"),
        (first.size, forged_root, "history rewritten"),
    ):
        AcceptedCheckpoint(ORIGIN, size, root).save(state)
        with pytest.raises(WitnessRefused, match=refusal):
            witness.witness()
        assert AcceptedCheckpoint.load(state) == AcceptedCheckpoint(ORIGIN, size, root)
    state.write_text(accepted)

    # The CLI witnesses as a municipality, and verify names both witnesses of the newest checkpoint.
    cli_state = tmp_path / "gm0363-witness.json"
    ran = run_cli(stack, "audit", "witness", "--as", "gm0363", "--state", str(cli_state))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["cosigned"] is True
    witness.witness()
    verified = stack.verify_audit().json()
    assert verified["intact"] and set(verified["witnesses"]) == {"gm0363", vt}
