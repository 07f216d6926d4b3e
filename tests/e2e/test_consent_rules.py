"""Consent end to end: each rule, and that a change applies to the very next signal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from shared.plumbing.policy import Role
from tests.e2e.agreements import sign_proposal
from tests.e2e.stack import Stack, header
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

RIEC = "riec-amsterdam"
VT = "veilig-thuis-amsterdam"
ZVH = "zvh-amsterdam"


def undermining_signal(bsn: str, **overrides: Any) -> dict[str, Any]:
    return domestic_violence_signal(
        signal_id=str(uuid.uuid4()),
        category="ondermijning",
        purpose="bestuurlijke_aanpak_ondermijning",
        subject={"kind": "person", "bsn": bsn, "name": "P. de Vries"},
        attributes={"kvk_number": "12345678", "sector": "horeca"},
        **overrides,
    )


def publish(stack: Stack, signal: dict[str, Any]) -> dict[str, Any]:
    response = stack.post_signal(signal)
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    body: dict[str, Any] = response.json()
    return body


def decision_for(stack: Stack, signal_id: str, recipient: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in stack.audit_records(signal_id=signal_id)
                if r["event_type"].endswith("decided.v1") and r["target"] == recipient
            ),
            None,
        )

    return eventually(found)


def delivered_to(stack: Stack, signal_id: str, recipient: str) -> bool:
    return any(
        header(r, "ce_deliveryid") == stack.delivery_id(recipient, signal_id)
        for r in stack.read_topic(f"partner.{recipient}.signals.v1")
    )


MUNICIPAL_STAFF = (Role.AGREEMENT_ADMINISTRATOR, Role.SUBJECT_RIGHTS)


def consent_api(
    stack: Stack,
    method: str,
    path: str,
    body: Any = None,
    as_org: str = "gm0363",
    roles: tuple[Role, ...] = MUNICIPAL_STAFF,
    person: str | None = None,
) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.url('consent')}{path}",
        json=body,
        headers=stack.bearer(as_org, *roles, person=person),
        timeout=30,
    )


def test_an_objection_recorded_between_two_signals_of_a_subject_blocks_the_second(stack: Stack) -> None:
    # The first undermining signal about a person reaches the RIEC.
    first = publish(stack, undermining_signal("111222333"))
    assert decision_for(stack, first["signal_id"], RIEC)["decision"] == "permit"
    pseudonym = first["subject_pseudonym"]

    # The person objects (AVG art. 21); the municipality records it.
    recorded = consent_api(
        stack,
        "POST",
        f"/v1/subjects/{pseudonym}/directives",
        {"kind": "objection", "scope": {"category": "ondermijning"}},
    )
    assert recorded.status_code == 201, recorded.text

    # The very next signal about that person is refused for the RIEC, and not delivered.
    second = publish(stack, undermining_signal("111222333"))
    decision = decision_for(stack, second["signal_id"], RIEC)
    assert decision["decision"] == "deny"
    assert any("objected" in reason for reason in decision["reasons"])
    assert delivered_to(stack, first["signal_id"], RIEC)
    assert not delivered_to(stack, second["signal_id"], RIEC)

    # Another person's signal still flows.
    other = publish(stack, undermining_signal("123456782"))
    assert decision_for(stack, other["signal_id"], RIEC)["decision"] == "permit"


def test_where_the_legal_basis_overrides_an_objection_the_signal_still_flows_and_says_why(
    stack: Stack,
) -> None:
    first = publish(stack, domestic_violence_signal(signal_id=str(uuid.uuid4())))
    pseudonym = first["subject_pseudonym"]
    # The municipality may record the objection once consent knows it signalled the person.
    decision_for(stack, first["signal_id"], VT)
    consent_api(
        stack,
        "POST",
        f"/v1/subjects/{pseudonym}/directives",
        {"kind": "objection", "scope": {"agreement_id": "huiselijk-geweld-amsterdam"}},
    ).raise_for_status()
    second = publish(stack, domestic_violence_signal(signal_id=str(uuid.uuid4())))
    decision = decision_for(stack, second["signal_id"], VT)
    assert decision["decision"] == "permit"
    assert any("overrides the objection" in reason for reason in decision["reasons"])


def care_avoidance_agreement(version: int, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "zorgmijding-amsterdam",
        "version": version,
        "title": "Zorgmijders: gegevensdeling met toestemming",
        "legal_basis": {"law": "AVG", "article": "art. 6 lid 1 sub a (toestemming)"},
        "providers": ["gm0363"],
        "recipients": [{"partner": ZVH, "fields": ["category", "severity", "subject.name"]}],
        "categories": ["zorgmijding"],
        "purposes": ["zorg_en_veiligheid"],
        "identifying": True,
        "requires_subject_consent": True,
        "valid_from": "2026-01-01",
        "retention_days": 180,
    }
    document.update(overrides)
    return document


def care_signal(bsn: str) -> dict[str, Any]:
    return domestic_violence_signal(
        signal_id=str(uuid.uuid4()),
        category="zorgmijding",
        purpose="zorg_en_veiligheid",
        subject={"kind": "person", "bsn": bsn, "name": "K. Bakker"},
        attributes={"living_conditions": "vervuild"},
    )


def test_a_consent_based_agreement_shares_only_while_the_subject_consents(stack: Stack) -> None:
    # A new agreement that requires the subject's consent comes into force through the API,
    # once every party signed its content: the municipality's privacy officer (not the
    # proposer) and the partner's, here with the CLI, as README shows.
    proposed = consent_api(stack, "POST", "/v1/agreements", care_avoidance_agreement(1))
    assert proposed.status_code == 202 and proposed.json()["status"] == "pending-approval", proposed.text
    assert proposed.json()["proposal"]["awaiting"] == ["gm0363", ZVH]
    signed = sign_proposal(stack, "gm0363", "zorgmijding-amsterdam", person="f.fg")
    assert signed.status_code == 200 and signed.json()["awaiting"] == [ZVH], signed.text
    result = subprocess.run(
        [sys.executable, "-m", "cli", "agreements", "approve", "zorgmijding-amsterdam", "1", "--as", ZVH],
        capture_output=True,
        env={**os.environ, **stack.env},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "approved"

    # Without consent: denied, and the reason says so.
    first = publish(stack, care_signal("999990019"))
    denied = decision_for(stack, first["signal_id"], ZVH)
    assert denied["decision"] == "deny" and any("consent is required" in r for r in denied["reasons"])

    # The subject consents: the next signal is delivered, minimised to the agreed fields.
    pseudonym = first["subject_pseudonym"]
    consent_api(
        stack,
        "POST",
        f"/v1/subjects/{pseudonym}/directives",
        {"kind": "consent_given", "scope": {"agreement_id": "zorgmijding-amsterdam"}},
    ).raise_for_status()
    second = publish(stack, care_signal("999990019"))
    assert decision_for(stack, second["signal_id"], ZVH)["decision"] == "permit"
    delivery = eventually(lambda: stack.delivery_of(ZVH, second["signal_id"]))
    assert set(delivery.data) == {"category", "severity", "subject.name"}

    # The subject withdraws consent: the next signal is denied again.
    consent_api(
        stack,
        "POST",
        f"/v1/subjects/{pseudonym}/directives",
        {"kind": "consent_withdrawn", "scope": {"agreement_id": "zorgmijding-amsterdam"}},
    ).raise_for_status()
    third = publish(stack, care_signal("999990019"))
    withdrawn = decision_for(stack, third["signal_id"], ZVH)
    assert withdrawn["decision"] == "deny" and any("withdrawn" in r for r in withdrawn["reasons"])

    # A version that does not follow the current one is refused.
    stale = consent_api(stack, "POST", "/v1/agreements", care_avoidance_agreement(1))
    assert stale.status_code == 409


def test_a_new_agreement_version_and_a_suspension_apply_to_the_very_next_signal(stack: Stack) -> None:
    # Version 2 of the RIEC agreement no longer shares the summary.
    current = consent_api(stack, "GET", "/v1/agreements/ondermijning-amsterdam").json()
    narrower = {
        **current,
        "version": current["version"] + 1,
        "recipients": [{"partner": RIEC, "fields": ["category", "severity", "occurred_at"]}],
    }
    consent_api(stack, "POST", "/v1/agreements", narrower).raise_for_status()
    signal = publish(stack, undermining_signal("123456782"))
    delivery = eventually(lambda: stack.delivery_of(RIEC, signal["signal_id"]))
    assert set(delivery.data) == {"category", "severity", "occurred_at"}
    assert delivery.agreement_version == narrower["version"]

    # The agreement is suspended: nothing flows under it from the next signal on.
    suspended = consent_api(stack, "POST", "/v1/agreements/ondermijning-amsterdam/suspend")
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    after = publish(stack, undermining_signal("123456782"))
    decision = decision_for(stack, after["signal_id"], RIEC)
    assert decision["decision"] == "deny" and any("suspended" in r for r in decision["reasons"])
    assert not delivered_to(stack, after["signal_id"], RIEC)

    # The audit log holds both changes of the agreement.
    changes = [r for r in stack.audit_records() if r["agreement_id"] == "ondermijning-amsterdam"]
    assert {"agreement-active", "agreement-suspended"} <= {r["decision"] for r in changes}


def test_deliveries_carry_their_obligations_in_headers_and_a_pseudonym_only_agreement_shares_no_identity(
    stack: Stack,
) -> None:
    signal = publish(stack, domestic_violence_signal(signal_id=str(uuid.uuid4())))
    record = eventually(
        lambda: next(
            (
                r
                for r in stack.read_topic(f"partner.{VT}.signals.v1")
                if header(r, "ce_deliveryid") == stack.delivery_id(VT, signal["signal_id"])
            ),
            None,
        )
    )
    assert header(record, "ce_purpose") == "veiligheid_huiselijk_geweld"
    assert header(record, "ce_retentiondays") == "365"
    assert "Wet maatschappelijke ondersteuning" in (header(record, "ce_legalbasis") or "")
    # The partner's pseudonym is its own: not the central one, so partners cannot link theirs.
    assert header(record, "ce_subject") != signal["subject_pseudonym"]


def test_explain_answers_why_without_delivering_anything(stack: Stack) -> None:
    question = {
        "municipality": "gm0363",
        "category": "huiselijk_geweld",
        "purpose": "veiligheid_huiselijk_geweld",
    }
    answers = {
        a["recipient"]: a for a in consent_api(stack, "POST", "/v1/decisions/explain", question).json()
    }
    assert answers[VT]["decision"] == "permit"
    assert answers[VT]["obligations"]["retention_days"] == 365
    assert answers[RIEC]["decision"] == "deny"
    assert any("category huiselijk_geweld is not covered" in r for r in answers[RIEC]["reasons"])
    assert answers[RIEC]["obligations"] is None

    # The CLI prints the same as a table, for a lawyer to read.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "consent",
            "explain",
            "--municipality",
            "gm0363",
            "--category",
            "huiselijk_geweld",
            "--purpose",
            "veiligheid_huiselijk_geweld",
            "--json",
        ],
        capture_output=True,
        env={**os.environ, **stack.env},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {a["recipient"]: a["decision"] for a in json.loads(result.stdout)}[VT] == "permit"


@pytest.mark.parametrize("method,path", [("POST", "/v1/agreements/ondermijning-amsterdam/suspend")])
def test_changes_need_an_access_token(stack: Stack, method: str, path: str) -> None:
    response = httpx.request(method, f"{stack.url('consent')}{path}", timeout=10)
    assert response.status_code == 401
