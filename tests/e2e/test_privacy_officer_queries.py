"""A privacy officer answers a citizen's access request: search by BSN, scope, the report in
both versions, all on the running system (the three services on the real broker)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest

from services.audit.log.catalogue import RECEIVED_EVENTS
from shared.plumbing.policy import Role
from tests.e2e.citizens import CASE_CONFERENCE, CONFIDENTIAL, publish_citizen
from tests.e2e.stack import Stack
from tests.polling import eventually

PLATFORM = "safety-chain"


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    return publish_citizen(stack)


def search(
    stack: Stack, organisation: str, body: dict[str, Any], role: Role = Role.PRIVACY_OFFICER
) -> httpx.Response:
    return httpx.post(
        f"{stack.url('audit')}/v1/audit/search",
        json=body,
        headers=stack.bearer(organisation, role),
        timeout=30,
    )


def test_a_bsn_in_the_body_finds_the_persons_exchanges_page_by_page(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    answer = search(stack, PLATFORM, {"bsn": citizen["bsn"], "limit": 500})
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    decided = {r["target"] for r in records if r["event_type"] == "nl.safetychain.exchange.decided.v1"}
    assert set(CASE_CONFERENCE) <= decided
    assert {r["signal_id"] for r in records if r["signal_id"]} == set(citizen["signals"])
    assert all(r["subject_pseudonym"] == citizen["subject"] for r in records)
    # the same search, three records a page, newest first, visits the same records
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = search(
            stack,
            PLATFORM,
            {"subject": citizen["subject"], "limit": 3, **({"after": after} if after else {})},
        )
        assert page.status_code == 200 and len(page.json()["records"]) <= 3
        seen += page.json()["records"]
        after = page.json()["next"]
        if after is None:
            break
    # (the first search's own read record is about the subject too, and now in the log)
    assert sorted(r["seq"] for r in seen if r["decision"] != "read") == sorted(
        r["seq"] for r in records if r["decision"] != "read"
    )
    assert any(r["decision"] == "read" for r in seen)
    times = [(r["event_time"], r["seq"]) for r in seen]
    assert times == sorted(times, reverse=True)


def test_the_bsn_is_never_kept_logged_or_echoed(stack: Stack, citizen: dict[str, Any]) -> None:
    bsn = citizen["bsn"]
    assert search(stack, PLATFORM, {"bsn": bsn, "decision": "deny"}).status_code == 200
    refused = search(stack, PLATFORM, {"bsn": bsn[:-1] + str((int(bsn[-1]) + 1) % 10)})
    assert refused.status_code == 422 and bsn[:-1] not in refused.text

    # the reads were logged, with the pseudonym and never the BSN
    def read_of_denials() -> dict[str, Any] | None:
        records = stack.audit_records(subject=citizen["subject"])
        return next((r for r in records if r["decision"] == "read" and "decision=deny" in r["reasons"]), None)

    read = eventually(read_of_denials)
    assert read["subject_pseudonym"] == citizen["subject"]
    assert f"subject={citizen['subject']}" in read["reasons"]
    for record in stack.read_topic("audit.reads.v1"):
        assert bsn.encode() not in (record.value or b"")
        assert all(bsn.encode() not in (value or b"") for _, value in record.headers)
    assert bsn not in stack.audit_db.read_bytes().decode("latin-1")
    assert bsn not in (stack.workdir / "logs" / "audit.log").read_text()


@pytest.mark.parametrize(
    ("organisation", "role", "status", "sees"),
    [
        (PLATFORM, Role.PRIVACY_OFFICER, 200, "everything"),
        ("gm0363", Role.PRIVACY_OFFICER, 200, "everything"),  # both signals are Amsterdam's
        ("politie-eenheid-amsterdam", Role.PRIVACY_OFFICER, 200, "what reached it"),  # got the BSN
        ("veilig-thuis-amsterdam", Role.PRIVACY_OFFICER, 200, "nothing"),  # never got the BSN
        ("gm0599", Role.PRIVACY_OFFICER, 200, "nothing"),
        ("gm0363", Role.PUBLISHER, 403, ""),
        ("gm0363", Role.SUBJECT_RIGHTS, 403, ""),
        ("veilig-thuis-amsterdam", Role.RECIPIENT, 403, ""),
    ],
)
def test_every_search_is_scoped_by_the_callers_role_and_organisation(
    stack: Stack, citizen: dict[str, Any], organisation: str, role: Role, status: int, sees: str
) -> None:
    answer = search(stack, organisation, {"bsn": citizen["bsn"], "limit": 500}, role)
    assert answer.status_code == status, answer.text
    if status != 200:
        return
    records = answer.json()["records"]
    if sees == "nothing":
        assert records == []
    elif sees == "what reached it":
        assert records and all(organisation in (r["source"], r["target"]) for r in records)
        assert all(r["event_type"] in RECEIVED_EVENTS and not r["signal_id"] for r in records)
        assert citizen["subject"] not in answer.text
    else:
        assert len({r["target"] for r in records}) >= len(CASE_CONFERENCE)
    anonymous = httpx.post(f"{stack.url('audit')}/v1/audit/search", json={"bsn": citizen["bsn"]}, timeout=30)
    assert anonymous.status_code == 401


def report(stack: Stack, organisation: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.url('audit')}/v1/audit/reports/subject-access",
        json=body,
        headers=stack.bearer(organisation, Role.PRIVACY_OFFICER),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def test_the_citizens_report_withholds_the_police_and_the_prosecutor_the_officers_shows_them(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    officer = report(stack, "gm0363", {"bsn": citizen["bsn"], "version": "officer"})
    shown = {section["recipient"]: section for section in officer["recipients"]}
    assert set(CASE_CONFERENCE) <= set(shown)
    for partner in CONFIDENTIAL:
        # the case conference was shared with them; the domestic violence signal was refused,
        # and that they were considered is as confidential
        exchanges = shown[partner]["exchanges"]
        assert sorted(e["decision"] for e in exchanges) == ["deny", "permit"]
        assert all(e["confidentiality"] == "vertrouwelijk" and e["confidential_until"] for e in exchanges)
        (permitted,) = (e for e in exchanges if e["decision"] == "permit")
        assert "subject.bsn" in permitted["fields"] and permitted["delivered_at"]
    assert officer["withheld"] == 2 * len(CONFIDENTIAL)
    vt = shown["veilig-thuis-amsterdam"]["exchanges"]
    assert len(vt) == 2 and all(e["delivered_at"] for e in vt)
    assert all(e["legal_basis"] and e["agreement_id"] and e["purpose"] for e in vt)

    text = json.dumps(report(stack, "gm0363", {"subject": citizen["subject"]}))
    citizen_version = json.loads(text)
    assert citizen_version["version"] == "citizen" and citizen_version["withheld"] == 0
    assert {s["recipient"] for s in citizen_version["recipients"]} == set(shown) - CONFIDENTIAL
    assert not any(partner in text for partner in CONFIDENTIAL)
    assert citizen["bsn"] not in text


def run_cli(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **stack.env, "COLUMNS": "200"},
        timeout=60,
        check=False,
    )


def test_the_terminal_asks_for_the_bsn_and_prints_the_report_and_the_search(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    shown = run_cli(stack, "audit", "report", "--bsn", "--as", "gm0363", stdin=citizen["bsn"] + "\n")
    assert shown.returncode == 0, shown.stderr
    assert "Veilig Thuis" in shown.stdout and "politie" not in shown.stdout.lower()
    assert citizen["bsn"] not in shown.stdout + shown.stderr
    found = run_cli(
        stack, "audit", "search", "--bsn", "--json", "--all", "--limit", "4", stdin=citizen["bsn"] + "\n"
    )
    assert found.returncode == 0, found.stderr
    records = json.loads(found.stdout)["records"]
    assert {r["signal_id"] for r in records if r["signal_id"]} == set(citizen["signals"])
    table = run_cli(stack, "audit", "search", "--subject", citizen["subject"], "--decision", "permit")
    assert table.returncode == 0 and "exchange.decided" in table.stdout
    assert table.stdout.count("permit") == 5 and "5 records" in table.stdout


def checkpoint_size(stack: Stack) -> int:
    answer = httpx.get(
        f"{stack.url('audit')}/v1/audit/checkpoint", headers=stack.bearer(PLATFORM, Role.PRIVACY_OFFICER)
    )
    return int(answer.text.splitlines()[1]) if answer.status_code == 200 else 0


def proof_reference(format: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Where each format carries the reference to the record's inclusion proof."""
    if format == "ndjson":
        return dict(entry["proof"])
    if format == "vwl":
        return dict(entry["x-safety-chain-proof"])
    attributes = entry["attributes"]
    return {
        "seq": attributes["safety_chain.audit.seq"],
        "inclusion": attributes.get("safety_chain.audit.inclusion"),
    }


@pytest.mark.parametrize("format", ["ndjson", "csv", "ldv", "vwl"])
def test_an_export_streams_every_matching_record_with_its_proof_reference(
    stack: Stack, citizen: dict[str, Any], format: str
) -> None:
    newest = max(r["seq"] for r in stack.audit_records(subject=citizen["subject"]))
    eventually(lambda: checkpoint_size(stack) >= newest or None)  # so proofs can be referred to
    answer = httpx.post(
        f"{stack.url('audit')}/v1/audit/exports",
        json={"bsn": citizen["bsn"], "format": format},
        headers=stack.bearer("gm0363", Role.PRIVACY_OFFICER),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert citizen["bsn"] not in answer.text
    count = int(answer.headers["x-record-count"])
    lines = answer.text.splitlines()
    assert count >= 10 and "attachment" in answer.headers["content-disposition"]
    if format == "csv":
        header, *rows = lines
        assert "seq" in header and "inclusion" in header
        assert len(rows) == count
        return
    entries = [json.loads(line) for line in lines]
    assert len(entries) == count  # every record of the query names the subject
    # each line names its record, and (once a checkpoint covers it) where its proof is
    references = [proof_reference(format, entry) for entry in entries]
    assert all(isinstance(r["seq"], int) for r in references)
    proven = [r for r in references if r["inclusion"]]
    assert proven and all(
        re.fullmatch(rf"/v1/audit/records/{r['seq']}/inclusion\?tree_size=\d+", r["inclusion"])
        for r in proven
    )
    if format == "ldv":
        assert all(e["attributes"]["dpl.core.data_subject_id"] == citizen["subject"] for e in entries)
    if format == "vwl":
        objects = [o for e in entries for o in e["verwerkteObjecten"]]
        assert objects and all(o["objectId"] == citizen["subject"] for o in objects)


def test_the_terminal_exports_to_a_file(stack: Stack, citizen: dict[str, Any], tmp_path: Any) -> None:
    target = tmp_path / "export.ndjson"
    done = run_cli(
        stack, "audit", "export", "--format", "ndjson", "-o", str(target), "--subject", citizen["subject"],
        "--as", "gm0363",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(written) == json.loads(done.stdout)["records"] >= 10
    assert all(entry["proof"]["seq"] == entry["seq"] for entry in written)
