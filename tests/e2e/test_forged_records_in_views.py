"""Forged records never feed a view (issue 18, item 5), on the running system: the three
services on the real broker, the records planted with a partner's own Kafka credential on the
one central topic a partner may write (exchange.receipts.v1).

The audit log keeps what it cannot believe as evidence (flagged forged, unverifiable or
unreadable), but the agreements page, the subject access report and the exports are built from
verified facts only; the flagged records have an integrity view of their own, scoped to the
reader and logged as a read.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.audit.console.session import SESSION_COOKIE
from services.audit.log.facts import FLAGGED_DECISIONS
from shared.contracts.agreements import AgreementPublished
from shared.contracts.envelope import Envelope
from shared.contracts.events import SignalAccepted
from shared.contracts.registry import Registry
from shared.plumbing.policy import Role
from tests.e2e.citizens import publish_citizen
from tests.e2e.stack import CONFIG_DIR, Stack, header
from tests.polling import eventually

DV = "huiselijk-geweld-amsterdam"  # parties: gm0363 and Veilig Thuis
RIEC = "riec-amsterdam"  # party to no agreement of domestic violence: the attacker
PLATFORM = "safety-chain"
RECEIPTS = "exchange.receipts.v1"


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    return publish_citizen(stack)


def plant(stack: Stack, value: bytes, event_type: str, subject: str | None = None) -> tuple[int, int]:
    """Write `value` as an unsigned record of `event_type` in the name of a platform service onto
    the receipts topic, with the attacking partner's own Kafka credential; where it landed."""
    source = "signals" if event_type == SignalAccepted.event_type else "consent"
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source(source),
        type=event_type,
        time=datetime.now(UTC),
        subject=subject,
    ).to_headers()

    async def send() -> tuple[int, int]:
        producer = AIOKafkaProducer(**stack.kafka_options(RIEC), acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(stack.topic(RECEIPTS), value, key=b"planted", headers=headers)
            return sent.partition, sent.offset
        finally:
            await producer.stop()

    return asyncio.run(send())


def newest_value(stack: Stack, topic: str, event_type: str) -> list[dict[str, Any]]:
    """The genuine records of `event_type` on `topic`, newest first, as JSON documents."""
    return [
        json.loads(r.value) for r in reversed(stack.read_topic(topic)) if header(r, "ce_type") == event_type
    ]


def console(stack: Stack, organisation: str) -> httpx.Client:
    token = stack.token(organisation, Role.PRIVACY_OFFICER, audience=("audit",))
    origin = stack.url("audit")
    return httpx.Client(
        base_url=origin, cookies={SESSION_COOKIE: token}, headers={"origin": origin}, timeout=60
    )


def officer(stack: Stack, organisation: str) -> dict[str, str]:
    return stack.bearer(organisation, Role.PRIVACY_OFFICER)


def report(stack: Stack, organisation: str, bsn: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.url('audit')}/v1/audit/reports/subject-access",
        json={"bsn": bsn, "version": "officer"},
        headers=officer(stack, organisation),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return {key: document[key] for key in ("signals", "recipients", "directives", "erasures")}


def flagged(stack: Stack, organisation: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{stack.url('audit')}/v1/audit/flagged", headers=officer(stack, organisation), timeout=30
    )
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()
    return records


def test_a_forged_agreement_and_a_forged_acceptance_planted_by_a_partner_feed_no_view(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    # What the views show before the attack.
    assert DV not in console(stack, RIEC).get("/console/agreements").text
    agreements_page = console(stack, PLATFORM).get("/console/agreements").text
    assert DV in agreements_page
    reports = {org: report(stack, org, citizen["bsn"]) for org in (PLATFORM, "gm0363", "gm0599")}
    assert len(reports[PLATFORM]["signals"]) == 2 and reports["gm0599"]["signals"] == []

    # RIEC copies Amsterdam's domestic violence agreement, names itself a recipient of the BSN,
    # and writes it as consent's next version; then it files a radicalisation signal about the
    # citizen in Rotterdam's name.
    genuine = next(
        r
        for r in newest_value(stack, "consent.agreements.v1", AgreementPublished.event_type)
        if r["agreement"]["id"] == DV
    )
    forged_agreement = genuine["agreement"] | {
        "version": genuine["agreement"]["version"] + 1,
        "recipients": [
            *genuine["agreement"]["recipients"],
            {**genuine["agreement"]["recipients"][0], "partner": RIEC, "fields": ["subject.bsn", "summary"]},
        ],
    }
    planted_agreement = plant(
        stack, json.dumps(genuine | {"agreement": forged_agreement}).encode(), AgreementPublished.event_type
    )
    accepted = newest_value(stack, "signals.accepted.v1", SignalAccepted.event_type)[0]
    forged_signal = str(uuid.uuid4())
    planted_acceptance = plant(
        stack,
        json.dumps(
            accepted
            | {
                "signal_id": forged_signal,
                "municipality": "gm0599",
                "category": "radicalisering",
                "subject_pseudonym": citizen["subject"],
            }
        ).encode(),
        SignalAccepted.event_type,
        subject=citizen["subject"],
    )

    # The log keeps both, flagged: the integrity view shows them to the platform's officer.
    def both_flagged() -> list[dict[str, Any]] | None:
        found = {
            (r["kafka_partition"], r["kafka_offset"]): r
            for r in flagged(stack, PLATFORM)
            if r["kafka_topic"] == stack.topic(RECEIPTS)
        }
        wanted = [found.get(planted_agreement), found.get(planted_acceptance)]
        return [r for r in wanted if r] if all(wanted) else None

    planted = eventually(both_flagged)
    assert all(r["decision"] in FLAGGED_DECISIONS for r in planted)

    # No view took them as facts: RIEC still reads no domestic violence agreement; the citizen's
    # report shows the same signals and exchanges to everyone, and Rotterdam none at all.
    assert DV not in console(stack, RIEC).get("/console/agreements").text
    assert {org: report(stack, org, citizen["bsn"]) for org in reports} == reports
    assert console(stack, PLATFORM).get("/console/agreements").text == agreements_page
    exported = httpx.post(
        f"{stack.url('audit')}/v1/audit/exports",
        json={"subject": citizen["subject"], "format": "ndjson"},
        headers=officer(stack, PLATFORM),
        timeout=60,
    )
    assert exported.status_code == 200 and forged_signal not in exported.text
    assert "radicalisering" not in exported.text
    # The console's integrity view lists them; Rotterdam, named as the forged signal's source,
    # sees the forgery in its name there too; RIEC's own scope holds neither.
    page = console(stack, PLATFORM).get("/console/integrity/flagged")
    assert page.status_code == 200 and all(f">{r['seq']}<" in page.text for r in planted)
    assert forged_signal in {r["signal_id"] for r in flagged(stack, "gm0599")}
    assert not {r["seq"] for r in planted} & {r["seq"] for r in flagged(stack, RIEC)}

    # Reading the integrity view is itself logged, like every read.
    def logged() -> list[dict[str, Any]] | None:
        reads = stack.audit_records(event_type="nl.safetychain.audit.read.v1")
        return [r for r in reads if r["source"] == "gm0599" and "flagged=True" in r["reasons"]] or None

    eventually(logged)
