"""The restore drill of docs/operations.md, on the running system: back up signals' store and
the audit log while signals flow, restore them into an empty folder, and find the audit log
intact and every payload accepted before the backup readable with the restored keys, except
the erased subject's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.verification import verify_store
from services.signals.keystore import SqlKeyStore
from shared.contracts.crypto.datakeys import decrypt
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import b64decode, personal_payload_context
from shared.contracts.events import SignalAccepted
from tests.e2e.citizens import a_bsn
from tests.e2e.stack import Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **stack.env},
        timeout=120,
        check=False,
    )


def publish(stack: Stack) -> str:
    person = {"kind": "person", "bsn": a_bsn(), "name": "R. Drill"}
    answer = stack.post_signal(domestic_violence_signal(signal_id=str(uuid.uuid4()), subject=person))
    assert answer.status_code == 202, answer.text
    subject: str = answer.json()["subject_pseudonym"]
    return subject


def accepted(stack: Stack) -> list[SignalAccepted]:
    return [SignalAccepted.model_validate_json(r.value) for r in stack.read_topic("signals.accepted.v1")]


def test_a_backup_taken_while_signals_flow_restores_into_an_empty_folder(
    stack: Stack, tmp_path: Path
) -> None:
    before = [publish(stack) for _ in range(5)]
    erased = before[0]
    gone = cli(stack, "subject", "erase", erased, "--as", "gm0363")
    assert gone.returncode == 0, gone.stderr
    eventually(lambda: len(accepted(stack)) >= len(before) or None)

    flowing = threading.Event()
    during: list[str] = []

    def keep_publishing() -> None:
        while not flowing.is_set():
            during.append(publish(stack))

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    try:
        made = cli(stack, "backup", "create", "--to", str(tmp_path / "backup"))
    finally:
        flowing.set()
        publisher.join()
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["stores"] == ["signals", "audit"]
    assert oct((tmp_path / "backup").stat().st_mode & 0o777) == "0o700"
    assert not any(path.name.endswith(".secret") for path in (tmp_path / "backup").iterdir())  # no KEK

    restored = tmp_path / "restored"
    signals_url, audit_url = f"sqlite:///{restored / 'signals.db'}", f"sqlite:///{restored / 'audit.db'}"
    done = cli(
        stack, "backup", "restore", "--from", str(tmp_path / "backup"),
        "--signals-database", signals_url, "--audit-database", audit_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    # the audit log verifies on its own: every node and stored checkpoint against the records
    log = SqlAuditStore(audit_url)
    verified = verify_store(log)
    assert verified.intact, verified.problem
    assert verified.records_checked > 0

    # every payload accepted before the backup opens with the restored keys and the KEK
    kek = KeyRing(stack.keys_dir, generate_missing=False).secret("key-encryption-key")
    keys = SqlKeyStore(signals_url, kek)
    opened: dict[str, Any] = {}
    for event in accepted(stack):
        subject = event.subject_pseudonym
        if subject == erased:
            assert keys.find(event.municipality, subject) is None
            assert keys.is_erased(event.municipality, subject)
            continue
        key = keys.find(event.municipality, subject)
        if key is None:
            assert subject in during  # accepted after the backup's moment
            continue
        context = personal_payload_context(str(event.signal_id), subject)
        opened[subject] = json.loads(decrypt(key, b64decode(event.personal.ciphertext), context))
    assert set(before[1:]) <= set(opened)
    assert all(document["subject"]["name"] == "R. Drill" for document in opened.values())
