"""The console shows an agreement waiting for its parties' signatures as a privacy officer
needs to see it: not in force, who signed, whose signature it still awaits (in Dutch)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from shared.plumbing.policy import Role
from tests.e2e.agreements import sign_proposal
from tests.e2e.console.browser import check_page, sign_in
from tests.e2e.stack import Stack
from tests.polling import eventually

POLICE = "politie-eenheid-amsterdam"


def test_a_proposal_shows_whose_signature_it_awaits(stack: Stack, console_page: Page) -> None:
    # Rotterdam proposes an agreement that names Amsterdam as a provider; only Rotterdam signs.
    proposal: dict[str, Any] = {
        "id": "gezamenlijk-huiselijk-geweld",
        "version": 1,
        "title": "Convenant huiselijk geweld Amsterdam en Rotterdam",
        "legal_basis": {"law": "Wet verplichte meldcode", "article": "art. 2"},
        "providers": ["gm0599", "gm0363"],
        "recipients": [{"partner": POLICE, "fields": ["category", "subject.bsn"]}],
        "categories": ["huiselijk_geweld"],
        "purposes": ["veiligheid_huiselijk_geweld"],
        "identifying": True,
        "valid_from": "2026-01-01",
        "retention_days": 365,
    }
    proposed = httpx.post(
        f"{stack.url('consent')}/v1/agreements",
        json=proposal,
        headers=stack.bearer("gm0599", Role.AGREEMENT_ADMINISTRATOR, person="r.admin"),
        timeout=30,
    )
    assert proposed.status_code == 202, proposed.text
    assert sign_proposal(stack, "gm0599", proposal["id"], person="r.fg").status_code == 200
    eventually(
        lambda: [
            r for r in stack.audit_records(agreement_id=proposal["id"]) if "awaiting gm0363" in r["reasons"]
        ]
    )

    page = console_page
    sign_in(page)
    page.goto("/console/agreements")
    section = page.get_by_role(
        "region",
        name="Convenant huiselijk geweld Amsterdam en Rotterdam (gezamenlijk-huiselijk-geweld)",
        exact=True,
    )
    expect(section).to_contain_text("Nog niet van kracht: wacht op de handtekening van elke partij")
    history = section.get_by_role("table")
    expect(history.get_by_role("columnheader", name="Wacht op handtekening van")).to_be_visible()
    newest = history.locator("tbody tr").first
    expect(newest).to_contain_text("Voorstel wacht op handtekeningen")  # proposal-pending, in words
    expect(newest).to_contain_text("Gemeente Rotterdam (r.fg)")  # gm0599/r.fg, in words
    expect(newest).to_contain_text("Gemeente Amsterdam")
    check_page(page, "agreements-awaiting-signatures")
