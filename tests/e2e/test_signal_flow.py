"""One signal from a municipality to a chain partner, through signals, consent and audit.

The three services run as processes against the real broker (see stack.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack, header
from tests.polling import eventually

BSN = "999990019"
NAME = "J. Jansen"
ALL_PARTNERS = (
    "politie-eenheid-amsterdam",
    "zvh-amsterdam",
    "veilig-thuis-amsterdam",
    "riec-amsterdam",
    "om-arrondissement-amsterdam",
)
AGREED_FOR_VEILIG_THUIS = {"category", "severity", "occurred_at", "summary", "subject.name"}


def domestic_violence_signal(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "signal_id": str(uuid.uuid4()),
        "municipality": "gm0363",
        "category": "huiselijk_geweld",
        "severity": "hoog",
        "purpose": "veiligheid_huiselijk_geweld",
        "occurred_at": "2026-11-20T21:15:00+01:00",
        "subject": {"kind": "person", "bsn": BSN, "name": NAME},
        "summary": "Buren melden geschreeuw en slaan in de woning.",
        "attributes": {"children_present": True, "children_count": 2},
    }
    document.update(overrides)
    return document


def publish(stack: Stack, document: dict[str, Any]) -> str:
    response = stack.post_signal(document)
    assert response.status_code == 202, response.text
    signal_id: str = response.json()["signal_id"]
    return signal_id


def records_of(stack: Stack, signal_id: str, minimum: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        records = stack.audit_records(signal_id=signal_id)
        return records if len(records) >= minimum else None

    return eventually(enough)


def test_a_domestic_violence_signal_reaches_only_the_agreed_partner_with_only_the_agreed_fields(
    stack: Stack,
) -> None:
    # A municipality publishes a signal that the domestic-violence agreement covers.
    signal_id = publish(stack, domestic_violence_signal())

    # Veilig Thuis receives it, decrypted with its own key, holding exactly the agreed fields.
    delivery = eventually(lambda: stack.delivery_of("veilig-thuis-amsterdam", signal_id))
    assert set(delivery.data) == AGREED_FOR_VEILIG_THUIS
    assert delivery.data["subject.name"] == NAME
    assert delivery.data["category"] == "huiselijk_geweld"
    assert delivery.agreement_id == "huiselijk-geweld-amsterdam"
    assert delivery.retention_days == 365
    assert len(delivery.partner_pseudonym) == 32

    # No other partner's topic holds anything of this signal.
    for partner in ALL_PARTNERS:
        if partner == "veilig-thuis-amsterdam":
            continue
        assert not delivered_anything(stack, partner, signal_id)


def delivered_anything(stack: Stack, partner: str, signal_id: str) -> bool:
    """Does the partner's topic hold a record of this signal, aborted transactions included?"""
    topic = f"partner.{partner}.signals.v1"
    own_id = stack.delivery_id(partner, signal_id)
    return any(header(r, "ce_deliveryid") == own_id for r in stack.read_topic(topic, "read_uncommitted"))


def test_no_topic_holds_the_bsn_or_the_name_in_clear(stack: Stack) -> None:
    # A delivered signal and a rejected one both pass through the broker.
    distinctive_name = "Xaviera Quirijnsdochter"
    signal_id = publish(
        stack, domestic_violence_signal(subject={"kind": "person", "bsn": BSN, "name": distinctive_name})
    )
    rejected = stack.post_signal(
        domestic_violence_signal(
            category="onbekend", subject={"kind": "person", "bsn": BSN, "name": distinctive_name}
        )
    )
    assert rejected.status_code == 422
    records_of(stack, signal_id, minimum=1 + len(ALL_PARTNERS) + 1)

    # Every byte of every record on every topic of this system, aborted transactions included.
    topics = stack.prefixed_topics()
    assert len(topics) >= 14
    scanned = 0
    for topic in topics:
        for record in stack.read_topic(topic.removeprefix(stack.prefix), "read_uncommitted"):
            blob = (
                (record.key or b"")
                + (record.value or b"")
                + b"".join(k.encode() + v for k, v in record.headers)
            )
            assert BSN.encode() not in blob, f"BSN in clear on {topic}"
            assert distinctive_name.encode() not in blob, f"name in clear on {topic}"
            assert NAME.encode() not in blob, f"name in clear on {topic}"
            scanned += 1
    assert scanned >= 1 + len(ALL_PARTNERS) + 1 + 1  # accepted, decisions, delivery, rejected


def test_logs_are_json_lines_with_correlation_ids_and_without_personal_data(stack: Stack) -> None:
    # A signal passes through all three services.
    correlation_id = uuid.uuid4().hex
    name = "Ymke Wijnaldum-Oostra"
    response = stack.post_signal(
        domestic_violence_signal(subject={"kind": "person", "bsn": BSN, "name": name}),
        **{"X-Correlation-ID": correlation_id},
    )
    assert response.status_code == 202
    eventually(lambda: len(stack.audit_records(correlation_id=correlation_id)) >= 1 + len(ALL_PARTNERS) + 1)

    # Every service logged about it in JSON, under the caller's correlation id, and no log
    # line anywhere names the person.
    services_seen = set()
    for service in ("signals", "consent", "audit"):
        text = (stack.workdir / "logs" / f"{service}.log").read_text()
        assert BSN not in text and name not in text and NAME not in text
        for line in text.splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("correlation_id") == correlation_id:
                    services_seen.add(entry["service"])
    assert services_seen == {"signals", "consent", "audit"}


def test_a_signal_no_agreement_covers_is_denied_for_every_partner_and_delivered_nowhere(stack: Stack) -> None:
    # Radicalisation from Amsterdam: no agreement covers that category.
    signal_id = publish(
        stack, domestic_violence_signal(category="radicalisering", attributes={"online_activity": True})
    )

    # One deny per candidate partner, each with its reason.
    records = records_of(stack, signal_id, minimum=1 + len(ALL_PARTNERS))
    decisions = [r for r in records if r["event_type"] == "nl.safetychain.exchange.decided.v1"]
    assert sorted(d["target"] for d in decisions) == sorted(ALL_PARTNERS)
    assert all(d["decision"] == "deny" and d["reasons"] for d in decisions)

    # Nothing of it on any partner topic.
    for partner in ALL_PARTNERS:
        assert not delivered_anything(stack, partner, signal_id)
    assert not any(
        r["event_type"] == "nl.safetychain.signal.delivered.v1"
        for r in stack.audit_records(signal_id=signal_id)
    )


BAD_INPUTS: dict[str, tuple[bytes, str, str]] = {
    "malformed-json": (b'{"municipality": "gm0363", ', "malformed_json", ""),
    "failing-eleven-test": (
        json.dumps(domestic_violence_signal(subject={"kind": "person", "bsn": "123456789"})).encode(),
        "invalid_bsn",
        "subject.bsn",
    ),
    "unknown-category": (
        json.dumps(domestic_violence_signal(category="graffiti")).encode(),
        "unknown_category",
        "category",
    ),
    "unknown-municipality": (
        json.dumps(domestic_violence_signal(municipality="gm9999")).encode(),
        "unknown_municipality",
        "municipality",
    ),
    "future-time": (
        json.dumps(domestic_violence_signal(occurred_at="2999-01-01T00:00:00+00:00")).encode(),
        "future_time",
        "occurred_at",
    ),
    "missing-field": (
        json.dumps({k: v for k, v in domestic_violence_signal().items() if k != "purpose"}).encode(),
        "missing_field",
        "purpose",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_each_bad_input_is_answered_422_and_leaves_a_rejected_record_and_an_audit_record(
    stack: Stack, case: str
) -> None:
    body, reason, location = BAD_INPUTS[case]
    correlation_id = uuid.uuid4().hex

    # The caller hears 422 with a problem+json body naming the error.
    response = stack.post_signal(body, **{"X-Correlation-ID": correlation_id})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert any(e["reason"] == reason and e["location"] == location for e in problem["errors"]), problem

    # A dead letter with the reason and no personal data sits on signals.rejected.v1.
    def dead_letter() -> dict[str, Any] | None:
        for record in stack.read_topic("signals.rejected.v1"):
            if correlation_id in (header(record, "ce_traceparent") or ""):
                value: dict[str, Any] = json.loads(record.value)
                return value
        return None

    rejected = eventually(dead_letter)
    assert any(e["reason"] == reason for e in rejected["errors"])
    assert BSN.encode() not in json.dumps(rejected).encode()

    # And the audit log holds it, under the same correlation id.
    audit = eventually(lambda: stack.audit_records(correlation_id=correlation_id))
    assert audit[0]["event_type"] == "nl.safetychain.signal.rejected.v1"
    assert any(r.startswith(f"{reason}:") for r in audit[0]["reasons"])

    # The service keeps running.
    assert httpx.get(f"{stack.url('signals')}/readyz").status_code == 200


def test_no_token_the_wrong_content_type_and_an_oversized_body_are_refused(stack: Stack) -> None:
    anonymous = stack.post_signal(domestic_violence_signal(), as_municipality=None)
    assert anonymous.status_code == 401 and anonymous.json()["reason"] == "unauthenticated"
    forged = stack.post_signal(domestic_violence_signal(), authorization="Bearer gm0363.0000")
    assert forged.status_code == 401
    wrong = stack.post_signal(b"<xml/>", **{"content-type": "text/xml"})
    assert wrong.status_code == 415 and wrong.json()["reason"] == "wrong_content_type"
    huge = stack.post_signal(b'{"summary": "' + b"x" * 70_000 + b'"}')
    assert huge.status_code == 413 and huge.json()["reason"] == "oversized"


def run_cli(stack: Stack, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        env={**_os_env(), **stack.env},
        timeout=60,
        check=False,
    )


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_the_audit_trail_of_a_delivered_signal_is_in_order_and_verify_finds_a_changed_record(
    stack: Stack,
) -> None:
    # A delivered signal leaves accepted, decided (one per partner) and delivered records, in that order.
    signal_id = publish(stack, domestic_violence_signal())
    records = records_of(stack, signal_id, minimum=1 + len(ALL_PARTNERS) + 1)
    kinds = [r["event_type"].split(".")[-2] for r in records]
    assert kinds[0] == "accepted"
    assert kinds.count("decided") == len(ALL_PARTNERS)
    assert kinds[-1] == "delivered"
    delivered = records[-1]
    assert delivered["target"] == "veilig-thuis-amsterdam"
    assert set(delivered["fields"]) == AGREED_FOR_VEILIG_THUIS
    # Inside the platform one trace id runs through the trail; the partner's record has its own.
    assert len({r["correlation_id"] for r in records if r is not delivered}) == 1
    assert delivered["correlation_id"] != records[0]["correlation_id"]
    assert delivered["delivery_id"] == stack.delivery_id("veilig-thuis-amsterdam", signal_id)

    # The CLI shows the same trail and verifies the chain.
    listed = run_cli(stack, "audit", "records", "--signal-id", signal_id)
    assert listed.returncode == 0, listed.stderr
    assert [r["seq"] for r in json.loads(listed.stdout)] == [r["seq"] for r in records]
    verified = run_cli(stack, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["intact"] is True

    # Someone changes one stored record behind the log's back: the full verification (the
    # operator's, reading every record of the store) fails and names it. The service's own verify
    # above now reads only what is appended after the head it verified.
    target = records[2]["seq"]
    database = f"sqlite:///{stack.audit_db}"
    with sqlite3.connect(stack.audit_db) as db:
        original = db.execute("SELECT target FROM audit_log_records WHERE seq = ?", (target,)).fetchone()[0]
        db.execute("UPDATE audit_log_records SET target = 'riec-amsterdam' WHERE seq = ?", (target,))
    try:
        broken = run_cli(stack, "audit", "verify", "--database", database)
        assert broken.returncode == 1
        assert json.loads(broken.stderr)["first_bad_seq"] == target
    finally:
        with sqlite3.connect(stack.audit_db) as db:
            db.execute("UPDATE audit_log_records SET target = ? WHERE seq = ?", (original, target))
    assert run_cli(stack, "audit", "verify", "--database", database).returncode == 0


def test_the_cli_publishes_a_signal_and_the_partner_cli_receives_it(stack: Stack, tmp_path: Path) -> None:
    # A municipal operator publishes from a file.
    signal_file = tmp_path / "signal.json"
    signal_file.write_text(json.dumps(domestic_violence_signal()))
    published = run_cli(stack, "signal", "publish", str(signal_file))
    assert published.returncode == 0, published.stderr
    signal_id = json.loads(published.stdout)["signal_id"]

    # Veilig Thuis reads its topic with the CLI: one JSON object per delivery.
    def received() -> dict[str, Any] | None:
        result = run_cli(stack, "partner", "receive", "--partner", "veilig-thuis-amsterdam", "--timeout", "3")
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]
        own_id = stack.delivery_id("veilig-thuis-amsterdam", signal_id)
        return next((line for line in lines if line.get("delivery_id") == own_id), None)

    delivery = eventually(received)
    assert set(delivery["data"]) == AGREED_FOR_VEILIG_THUIS

    # A rejected publication exits non-zero with the errors, from standard input too.
    rejected = run_cli(
        stack, "signal", "publish", "-", stdin=json.dumps(domestic_violence_signal(category="x")).encode()
    )
    assert rejected.returncode == 1
    assert json.loads(rejected.stderr)["reason"] == "unknown_category"


def test_a_signal_sent_without_an_id_is_delivered_under_the_id_the_caller_was_given(stack: Stack) -> None:
    signal = domestic_violence_signal()
    del signal["signal_id"]
    signal_id = publish(stack, signal)
    # The partner knows it by its own delivery id, which the platform derives from that signal id.
    delivery = eventually(lambda: stack.delivery_of("veilig-thuis-amsterdam", signal_id))
    assert delivery.delivery_id == stack.delivery_id("veilig-thuis-amsterdam", signal_id) != signal_id
