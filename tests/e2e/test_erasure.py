"""Erasure by crypto-shredding: after it, a subject's accepted records are unreadable while
every other subject's stay readable."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from functools import partial
from typing import Any

from partner import ErasureRequest, ReceivedSignal
from services.signals.keystore import SqlKeyStore
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import b64decode, personal_payload_context
from shared.contracts.events import ErasureNotice, SignalAccepted, data_key_id
from tests.e2e.stack import Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

ERASED_BSN = "111222333"
KEPT_BSN = "123456782"
VEILIG_THUIS = "veilig-thuis-amsterdam"  # receives domestic-violence signals


def publish(stack: Stack, bsn: str) -> dict[str, Any]:
    response = stack.post_signal(
        domestic_violence_signal(signal_id=str(uuid.uuid4()), subject={"kind": "person", "bsn": bsn})
    )
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    body: dict[str, Any] = response.json()
    return body


def readable(stack: Stack, accepted: SignalAccepted) -> bool:
    """Can the payload still be decrypted with what the key store holds?"""
    keys = KeyRing(stack.keys_dir, generate_missing=False)
    store = SqlKeyStore(f"sqlite:///{stack.workdir / 'signals.db'}", keys.secret("key-encryption-key"))
    data_key = store.find(accepted.municipality, accepted.subject_pseudonym)
    if data_key is None:
        return False
    context = personal_payload_context(str(accepted.signal_id), accepted.subject_pseudonym)
    plain = json.loads(datakeys.decrypt(data_key, b64decode(accepted.personal.ciphertext), context))
    return plain["subject"]["bsn"] in (ERASED_BSN, KEPT_BSN)


def stored_wrapped_key(stack: Stack, subject: str, municipality: str = "gm0363") -> bytes:
    database = sqlite3.connect(stack.workdir / "signals.db")
    try:
        (wrapped,) = database.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject = ? AND municipality = ?",
            (subject, municipality),
        ).fetchone()
    finally:
        database.close()
    return bytes(wrapped)


def holders_of(stack: Stack, secret: bytes) -> list[str]:
    """The files in the stack's data folder (key store, ledger, audit log, logs) holding `secret`."""
    return [str(path) for path in stack.workdir.rglob("*") if path.is_file() and secret in path.read_bytes()]


def test_erasing_a_subject_makes_its_records_unreadable_and_leaves_others_readable(stack: Stack) -> None:
    # Two subjects each have two accepted signals.
    erased = [publish(stack, ERASED_BSN) for _ in range(2)]
    kept = [publish(stack, KEPT_BSN) for _ in range(2)]
    pseudonym = erased[0]["subject_pseudonym"]
    ids = {s["signal_id"] for s in erased + kept}

    def accepted() -> dict[str, SignalAccepted] | None:
        records = {
            header(r, "ce_signalid"): SignalAccepted.model_validate_json(r.value)
            for r in stack.read_topic("signals.accepted.v1")
        }
        found = {k: v for k, v in records.items() if k is not None and k in ids}
        return found if len(found) == len(ids) else None

    before = eventually(accepted)
    assert all(readable(stack, event) for event in before.values())
    wrapped_key = stored_wrapped_key(stack, pseudonym)
    assert holders_of(stack, wrapped_key)  # the probe below can fail

    # Veilig Thuis received and processed both signals of the subject about to be erased.
    vt = stack.partner(VEILIG_THUIS)

    async def keep(signal: ReceivedSignal) -> None:
        return None

    vt_deliveries = [eventually(partial(stack.delivery_of, VEILIG_THUIS, s["signal_id"])) for s in erased]
    vt_pseudonyms = {delivery.partner_pseudonym for delivery in vt_deliveries}
    assert len(vt_pseudonyms) == 1  # Veilig Thuis's own pseudonym of the erased subject
    asyncio.run(vt.process(keep, wait_seconds=3))

    # The municipality's privacy officer erases the first subject with the CLI.
    result = subprocess.run(
        [sys.executable, "-m", "cli", "subject", "erase", pseudonym, "--as", "gm0363"],
        capture_output=True,
        env={**os.environ, **stack.env},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["had_data_key"] is True

    # Every accepted record of that subject is now unreadable; the other subject's are not.
    after = eventually(accepted)
    for signal_id, event in after.items():
        expected = event.subject_pseudonym != pseudonym
        assert readable(stack, event) is expected, signal_id

    # Consent's copy of the key is shredded too: the compacted topic's latest value is a tombstone,
    # and the erasure is announced on subjects.erasure.v1 and in the audit log.
    latest = {r.key: r.value for r in stack.read_topic("subjects.keys.v1")}
    assert latest[data_key_id(pseudonym, "gm0363").encode()] is None
    assert any(r.key == pseudonym.encode() for r in stack.read_topic("subjects.erasure.v1"))
    eventually(
        lambda: [r for r in stack.audit_records() if r["event_type"].endswith("subject.erased.v1")] or None
    )

    # No file of the signals service's data folder holds the wrapped key any more (WAL included).
    assert holders_of(stack, wrapped_key) == []

    # Veilig Thuis, which received data about the subject, is told (AVG art. 17 and 19): its
    # SDK hands the notice, in Veilig Thuis's own pseudonym, to its erasure handler and
    # acknowledges it; the audit log leads from the erasure to that receipt.
    notices: list[ErasureRequest] = []

    async def erase(notice: ErasureRequest) -> None:
        notices.append(notice)

    def notified() -> list[ErasureRequest] | None:
        asyncio.run(vt.process(keep, wait_seconds=2, on_erasure=erase))
        return notices or None

    eventually(notified, timeout=60)
    assert [n.partner_pseudonym for n in notices] == [vt_pseudonyms.pop()]
    forwarded = eventually(
        lambda: (
            [r for r in stack.audit_records(subject=pseudonym) if r["decision"] == "erasure-forwarded"]
            or None
        )
    )
    assert [r["target"] for r in forwarded] == [VEILIG_THUIS]
    eventually(
        lambda: (
            [
                r
                for r in stack.audit_records()
                if r["decision"] == "receipt-erased" and r["delivery_id"] == forwarded[0]["delivery_id"]
            ]
            or None
        )
    )
    # A partner that never received anything about the subject gets no notice.
    assert not any(
        header(r, "ce_type") == ErasureNotice.event_type
        for r in stack.read_topic("partner.riec-amsterdam.signals.v1", "read_uncommitted")
    )

    # A new signal about the erased subject is refused; the other subject's still flows.
    refused = stack.post_signal(
        domestic_violence_signal(subject={"kind": "person", "bsn": ERASED_BSN}),
    )
    assert refused.status_code == 409 and refused.json()["reason"] == "subject_erased"
    assert publish(stack, KEPT_BSN)["status"] == "accepted"
