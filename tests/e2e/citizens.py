"""A citizen for the privacy officers' tests: two signals about one person, published through
the running system, waited for until every delivery is in the audit log."""

from __future__ import annotations

import random
import uuid
from typing import Any

from shared.contracts.signal import passes_eleven_test
from tests.e2e.stack import Stack
from tests.polling import eventually

CASE_CONFERENCE = (
    "zvh-amsterdam",
    "politie-eenheid-amsterdam",
    "om-arrondissement-amsterdam",
    "veilig-thuis-amsterdam",
)
CONFIDENTIAL = {"politie-eenheid-amsterdam", "om-arrondissement-amsterdam"}  # config/agreements/zvh-...


def a_bsn() -> str:
    while True:
        candidate = f"{random.randrange(10**8, 10**9):09d}"
        if passes_eleven_test(candidate):
            return candidate


def publish_citizen(stack: Stack) -> dict[str, Any]:
    """A person two signals are about: a case conference (four partners, two of them
    confidential) and a domestic violence signal (Veilig Thuis)."""
    bsn = a_bsn()
    person = {"kind": "person", "bsn": bsn, "name": "P. de Vries"}
    common = {
        "municipality": "gm0363",
        "severity": "hoog",
        "occurred_at": "2026-11-20T21:15:00+01:00",
        "subject": person,
        "summary": "Melding van de wijkagent.",
    }
    signals = [
        {**common, "signal_id": str(uuid.uuid4()), "category": "verward_gedrag",
         "purpose": "zorg_en_veiligheid_casusoverleg",
         "attributes": {"danger_to_others": True, "police_code": "E33"}},
        {**common, "signal_id": str(uuid.uuid4()), "category": "huiselijk_geweld",
         "purpose": "veiligheid_huiselijk_geweld", "attributes": {"children_present": False}},
    ]  # fmt: skip
    subject = ""
    for signal in signals:
        answer = stack.post_signal(signal)
        assert answer.status_code == 202, answer.text
        subject = answer.json()["subject_pseudonym"]
    eventually(
        lambda: (
            len([r for r in stack.audit_records(subject=subject) if r["decision"] == "delivered"]) >= 5
            or None
        ),
        timeout=60,
    )
    return {"bsn": bsn, "subject": subject, "signals": [s["signal_id"] for s in signals]}
