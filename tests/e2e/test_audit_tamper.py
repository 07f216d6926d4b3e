"""Verify cannot be fooled by the store (its own module: it rewrites this stack's audit database).

The scenario the audit log must survive: someone who can write the audit database cuts off its
newest records and re-hashes what is left, stored checkpoints included. The store then agrees
with itself; the checkpoints published on audit.checkpoints.v1 do not.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from partner.witness import AcceptedCheckpoint
from services.audit.log.sql_store import SqlAuditStore
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.e2e.test_audit_checkpoints import settled_checkpoint
from tests.e2e.test_signal_flow import domestic_violence_signal, run_cli
from tests.integration.test_audit_store_contract import rehash_behind_the_logs_back


def test_three_newest_records_cut_off_and_rehashed_are_found_and_the_first_named(
    stack: Stack, tmp_path: Path
) -> None:
    for _ in range(2):
        assert stack.post_signal(domestic_violence_signal()).status_code == 202
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    checkpoint = settled_checkpoint(stack, Registry.load(CONFIG_DIR, keys).ed25519_public("audit"))
    before = stack.verify_audit().json()
    assert before["intact"] is True and before["size"] == checkpoint.size > 3, before

    url = f"sqlite:///{stack.audit_db}"
    locally = run_cli(stack, "audit", "verify", "--database", url)  # the CLI, with its progress bar
    assert locally.returncode == 0, locally.stderr
    assert json.loads(locally.stdout)["intact"] is True
    deeply = run_cli(stack, "audit", "verify", "--database", url, "--deep")  # the reference encoder
    assert deeply.returncode == 0 and json.loads(deeply.stdout)["size"] == checkpoint.size, deeply.stderr
    # A witness that accepted another root for this size (it was shown a split view) disagrees.
    split = tmp_path / "witness.json"
    AcceptedCheckpoint(checkpoint.origin, checkpoint.size, bytes(32)).save(split)
    disagreed = run_cli(stack, "audit", "verify", "--database", url, "--witness-state", str(split))
    assert disagreed.returncode == 1 and "differ" in json.loads(disagreed.stderr)["problem"]

    database = SqlAuditStore(url)
    with database.engine.begin() as connection:
        cut = text("DELETE FROM audit_log_records WHERE seq > :keep")
        connection.execute(cut, {"keep": checkpoint.size - 3})
    rehash_behind_the_logs_back(database)
    database.engine.dispose()

    answer = stack.verify_audit()
    assert answer.status_code == 409, answer.text
    assert answer.json()["first_bad_seq"] == checkpoint.size - 2
    assert "outside" in answer.json()["problem"]
    locally = run_cli(stack, "audit", "verify", "--database", url)
    assert locally.returncode == 1, locally.stderr
    assert json.loads(locally.stderr)["first_bad_seq"] == checkpoint.size - 2, locally.stderr
