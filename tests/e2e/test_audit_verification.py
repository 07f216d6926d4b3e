"""The audit service verifies its log incrementally (its own module: it changes this stack's audit
database). After the process's first, full verification, GET /v1/audit/verify reads only the
records appended since the last verified tree head, and still names a record changed among them.
That callers asking at once share one run is shown on the verifier itself
(tests/integration/test_audit_verification.py), where the test can hold a run open.
"""

from __future__ import annotations

import re
import sqlite3

import httpx

from tests.e2e.stack import Stack
from tests.e2e.test_signal_flow import domestic_violence_signal, publish, records_of


def verified_records_read(stack: Stack) -> float:
    text = httpx.get(f"{stack.url('audit')}/metrics", timeout=30).text
    found = re.search(r"^safetychain_audit_verified_records_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_verify_reads_only_what_was_appended_and_names_a_changed_record_among_it(stack: Stack) -> None:
    records_of(stack, publish(stack, domestic_violence_signal()), minimum=1)
    # the process's first verification reads every record
    first = stack.verify_audit().json()
    assert first["intact"] and first["kind"] == "full" and first["records_read"] == first["size"], first

    # more is appended (a signal's facts, and the logged reads of this test)
    records_of(stack, publish(stack, domestic_violence_signal()), minimum=1)
    read_before = verified_records_read(stack)
    second = stack.verify_audit().json()
    assert second["intact"] and second["kind"] == "incremental", second
    appended = second["size"] - first["size"]
    assert appended > 0 and second["records_read"] == appended
    assert verified_records_read(stack) - read_before == appended  # the verified prefix was not read

    # a record appended after that head is changed behind the log's back: the next run names it
    target = records_of(stack, publish(stack, domestic_violence_signal()), minimum=1)[0]["seq"]
    assert target > second["size"]
    with sqlite3.connect(stack.audit_db) as db:
        original = db.execute("SELECT target FROM audit_log_records WHERE seq = ?", (target,)).fetchone()[0]
        db.execute("UPDATE audit_log_records SET target = 'riec-amsterdam' WHERE seq = ?", (target,))
    try:
        read_before = verified_records_read(stack)
        broken = stack.verify_audit()
        assert broken.status_code == 409, broken.text
        assert broken.json()["first_bad_seq"] == target and broken.json()["kind"] == "incremental"
        assert verified_records_read(stack) - read_before == target - second["size"]
    finally:
        with sqlite3.connect(stack.audit_db) as db:
            db.execute("UPDATE audit_log_records SET target = ? WHERE seq = ?", (original, target))
    # put back, the log verifies again from the same head
    assert stack.verify_audit().json()["intact"]
