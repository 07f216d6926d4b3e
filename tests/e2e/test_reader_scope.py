"""A partner's privacy officer sees its own exchanges only (issue 18, item 3), and every audit
list is paged (item 7): on the running system, the three services on the real broker.

Consent writes a decision record for every partner for every signal, permit or deny, under the
platform's pseudonym and signal id. A partner's officer reads none of them: only what reached
the partner (its deliveries, erasure notices and receipts) under its own pseudonym and delivery
ids. It finds a person by BSN only where a delivery to it carried that BSN; for any other BSN
its search finds nothing and shows no pseudonym.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.audit.console.session import SESSION_COOKIE
from services.audit.log.catalogue import RECEIVED_EVENTS
from services.audit.queries.search import MAX_PAGE
from shared.plumbing.policy import Role
from tests.e2e.citizens import publish_citizen
from tests.e2e.stack import Stack

POLICE = "politie-eenheid-amsterdam"  # receives the BSN under the case conference agreement
VT = "veilig-thuis-amsterdam"  # receives the person's name, never the BSN
DECIDED = "nl.safetychain.exchange.decided.v1"


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    return publish_citizen(stack)


def officer(stack: Stack, organisation: str) -> dict[str, str]:
    return stack.bearer(organisation, Role.PRIVACY_OFFICER)


def search(stack: Stack, organisation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.url('audit')}/v1/audit/search", json=body, headers=officer(stack, organisation), timeout=30
    )


def listing(stack: Stack, organisation: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{stack.url('audit')}/v1/audit/records",
        params=params,
        headers=officer(stack, organisation),
        timeout=30,
    )


def console(stack: Stack, organisation: str) -> httpx.Client:
    """The console as `organisation`'s privacy officer (the session cookie holds the token)."""
    token = stack.token(organisation, Role.PRIVACY_OFFICER, audience=("audit",))
    origin = stack.url("audit")
    return httpx.Client(
        base_url=origin, cookies={SESSION_COOKIE: token}, headers={"origin": origin}, timeout=60
    )


def own_pseudonym(stack: Stack, citizen: dict[str, Any], partner: str) -> str:
    """The partner's own pseudonym of the citizen, as the platform's officer sees it on the
    deliveries the citizen's decisions lead to."""
    (pseudonym,) = {
        r["subject_pseudonym"]
        for r in stack.audit_records(subject=citizen["subject"])
        if r["event_type"] == "nl.safetychain.signal.delivered.v1" and r["target"] == partner
    }
    assert pseudonym != citizen["subject"]
    return str(pseudonym)


def test_a_partner_officer_finds_by_bsn_only_what_reached_it_under_its_own_pseudonym(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    # Every partner of the case conference had a decision; the police received the BSN.
    decided = [r for r in stack.audit_records(subject=citizen["subject"]) if r["event_type"] == DECIDED]
    assert {r["target"] for r in decided} >= {POLICE, VT} and any(r["decision"] == "deny" for r in decided)
    police = own_pseudonym(stack, citizen, POLICE)

    answer = search(stack, POLICE, {"bsn": citizen["bsn"], "limit": MAX_PAGE})
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    # its delivery of the case conference and its receipt, nothing of the signal it was refused
    assert records and {r["event_type"] for r in records} <= RECEIVED_EVENTS
    assert {r["subject_pseudonym"] for r in records} == {police}
    delivered = {r["delivery_id"] for r in records if r["decision"] == "delivered"}
    assert delivered == {stack.delivery_id(POLICE, citizen["signals"][0])}
    for shown in (citizen["subject"], *citizen["signals"], "deny", DECIDED):
        assert shown not in answer.text
    # its report: what reached it, as confidential as the decision behind it (police work), so
    # the citizen's version holds none of it
    reports = {
        version: httpx.post(
            f"{stack.url('audit')}/v1/audit/reports/subject-access",
            json={"bsn": citizen["bsn"], "version": version},
            headers=officer(stack, POLICE),
            timeout=30,
        )
        for version in ("officer", "citizen")
    }
    assert all(r.status_code == 200 for r in reports.values())
    (section,) = reports["officer"].json()["recipients"]
    (exchange,) = section["exchanges"]
    assert (
        exchange["provider"] == "gm0363" and "subject.bsn" in exchange["fields"] and exchange["delivered_at"]
    )
    assert exchange["confidentiality"] == "vertrouwelijk" and reports["officer"].json()["subject"] == police
    assert reports["citizen"].json()["recipients"] == []
    assert not any(citizen["subject"] in r.text or citizen["signals"][0] in r.text for r in reports.values())
    # the console's search answers the same, and carries the police's own pseudonym on
    page = console(stack, POLICE).post("/console/search", data={"bsn": citizen["bsn"]})
    assert page.status_code == 200 and police in page.text
    assert citizen["subject"] not in page.text and citizen["bsn"] not in page.text


def test_a_partner_that_never_received_the_bsn_finds_nothing_and_sees_no_pseudonym(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    theirs = own_pseudonym(stack, citizen, VT)  # Veilig Thuis did receive the person, by name
    for organisation in (VT, "riec-amsterdam"):  # ... and RIEC received nothing at all
        answer = search(stack, organisation, {"bsn": citizen["bsn"]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"records": [], "next": None}
        report = httpx.post(
            f"{stack.url('audit')}/v1/audit/reports/subject-access",
            json={"bsn": citizen["bsn"], "version": "officer"},
            headers=officer(stack, organisation),
            timeout=30,
        )
        assert report.status_code == 200, report.text
        assert report.json()["recipients"] == [] and report.json()["signals"] == []
        page = console(stack, organisation).post("/console/search", data={"bsn": citizen["bsn"]})
        assert page.status_code == 200, page.text
        for text in (answer.text, report.text, page.text):
            assert citizen["subject"] not in text and theirs not in text and citizen["bsn"] not in text


def test_a_partner_officer_lists_only_its_deliveries_notices_and_receipts(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    theirs = own_pseudonym(stack, citizen, VT)
    answer = listing(stack, VT)
    assert answer.status_code == 200, answer.text
    records = answer.json()
    assert records and all(r["event_type"] in RECEIVED_EVENTS for r in records)
    assert all(VT in (r["source"], r["target"]) and not r["signal_id"] for r in records)
    assert theirs in {r["subject_pseudonym"] for r in records}
    assert citizen["subject"] not in answer.text and not any(r["decision"] == "deny" for r in records)
    # asked by the platform's pseudonym or signal id, nothing: they never reached the partner
    assert listing(stack, VT, subject=citizen["subject"]).json() == []
    assert listing(stack, VT, signal_id=citizen["signals"][1]).json() == []
    # by its own pseudonym: its deliveries of both signals, each under its own delivery id
    own = listing(stack, VT, subject=theirs).json()
    assert {r["delivery_id"] for r in own if r["decision"] == "delivered"} == {
        stack.delivery_id(VT, signal) for signal in citizen["signals"]
    }
    # an export holds no more than the list
    exported = httpx.post(
        f"{stack.url('audit')}/v1/audit/exports",
        json={"format": "ndjson"},
        headers=officer(stack, VT),
        timeout=60,
    )
    assert exported.status_code == 200 and citizen["subject"] not in exported.text
    assert not any(signal in exported.text for signal in citizen["signals"])
    # a municipality keeps its own scope: Amsterdam's officer sees the decisions of its signals
    amsterdam = listing(stack, "gm0363", subject=citizen["subject"]).json()
    assert {r["target"] for r in amsterdam if r["event_type"] == DECIDED} >= {POLICE, VT}


def test_the_record_list_is_paged_with_a_maximum_page_size(stack: Stack, citizen: dict[str, Any]) -> None:
    too_many = listing(stack, "safety-chain", limit=str(MAX_PAGE + 1))
    assert too_many.status_code == 422
    # three records a page, following the Link header, visit the whole answer once, in order
    whole = listing(stack, "safety-chain", subject=citizen["subject"]).json()
    seen: list[dict[str, Any]] = []
    url: str | None = f"{stack.url('audit')}/v1/audit/records"
    params: dict[str, str] | None = {"subject": citizen["subject"], "limit": "3"}
    pages = 0
    while url is not None:
        page = httpx.get(url, params=params, headers=officer(stack, "safety-chain"), timeout=30)
        assert page.status_code == 200 and len(page.json()) <= 3
        seen += page.json()
        pages += 1
        following = page.links.get("next", {}).get("url")
        url, params = (f"{stack.url('audit')}{following}", None) if following else (None, None)
    assert pages > 1
    # (the listing's own reads are about the subject too and may arrive in between: compare the rest)
    assert [r["seq"] for r in seen if r["decision"] != "read"] == [
        r["seq"] for r in whole if r["decision"] != "read"
    ]
    # and the flagged records' view pages the same way
    assert (
        httpx.get(
            f"{stack.url('audit')}/v1/audit/flagged",
            params={"limit": str(MAX_PAGE + 1)},
            headers=officer(stack, "safety-chain"),
            timeout=30,
        ).status_code
        == 422
    )
