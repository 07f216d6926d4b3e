"""A privacy officer, in a real browser, answers a citizen's access request, follows one
signal's path, reads the agreements and the dashboard, and proves a record's place in the log.
Each page: a screenshot (test-artifacts/screenshots) and an accessibility check (axe)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from partner.witness import Witness
from services.audit.console.i18n import EN, NL
from services.audit.log.catalogue import CATALOGUE, UNREADABLE_TYPE
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import SignalAccepted
from shared.contracts.reasons import TEMPLATES
from shared.contracts.registry import Registry
from shared.contracts.tlog.checkpoint import parse_proof_file, verify_proof_file
from shared.contracts.tlog.note import Verifier
from shared.plumbing.policy import Role
from tests.e2e.citizens import publish_citizen
from tests.e2e.console.browser import SCREENSHOTS, check_page, outside_browser, sign_in
from tests.e2e.stack import CONFIG_DIR, Stack
from tests.e2e.test_forged_records_in_views import RECEIPTS, newest_value, plant
from tests.polling import eventually

OFFICER = "Fatima de Groot"


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    return publish_citizen(stack)


@pytest.fixture
def officer(console_page: Page, citizen: dict[str, Any]) -> Page:
    """Amsterdam's privacy officer, signed in (both signals are Amsterdam's)."""
    sign_in(console_page, "gm0363", OFFICER)
    return console_page


def test_a_search_by_bsn_shows_the_persons_records_and_never_the_bsn(
    officer: Page, citizen: dict[str, Any]
) -> None:
    page = officer
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Zoeken").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Zoeken in het logboek")
    check_page(page, "search")
    page.get_by_label("BSN", exact=True).fill(citizen["bsn"])
    page.get_by_label("Soort gebeurtenis").select_option("nl.safetychain.exchange.decided.v1")
    page.get_by_role("button", name="Zoeken", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Resultaten: "))).to_be_visible()
    rows = page.get_by_role("region", name="Gevonden logregels, nieuwste eerst").locator("tbody tr")
    expect(rows).to_have_count(10)  # two signals, five partners each
    assert citizen["bsn"] not in page.url and citizen["bsn"] not in page.content()
    # the pseudonym, not the BSN, carries the search on
    expect(page.get_by_label("Of: pseudoniem")).to_have_value(citizen["subject"])
    check_page(page, "search-results")


def test_one_signals_timeline_shows_every_partner_with_decision_delivery_and_receipt(
    officer: Page, citizen: dict[str, Any]
) -> None:
    page = officer
    page.goto(f"/console/signals/{citizen['signals'][0]}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Verloop van een signaal")
    for partner in ("Zorg- en Veiligheidshuis", "Politie", "Openbaar Ministerie", "Veilig Thuis"):
        expect(page.get_by_role("heading", level=2, name=re.compile(partner))).to_be_visible()
    expect(page.locator("ol.timeline")).to_contain_text("Vertrouwelijk tot")
    expect(page.locator("ol.timeline")).to_contain_text("Gedeeld")  # permit, in words
    check_page(page, "timeline")


def test_the_subject_access_report_for_the_citizen_and_for_the_officer(
    officer: Page, citizen: dict[str, Any], tmp_path: Path
) -> None:
    page = officer
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Inzageverzoek").click()
    check_page(page, "report-form")
    page.get_by_label("BSN", exact=True).fill(citizen["bsn"])
    page.get_by_role("button", name="Overzicht maken").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wie kreeg gegevens over u?")
    report = page.locator("article.report")
    expect(report).to_contain_text("Veilig Thuis")
    expect(report).to_contain_text("Zorg- en Veiligheidshuis")
    expect(report).not_to_contain_text("Politie")
    expect(report).not_to_contain_text("Openbaar Ministerie")
    assert citizen["bsn"] not in page.content()
    check_page(page, "report-citizen")
    page.screenshot(path=SCREENSHOTS / "readme-report.png")  # the window, for README
    page.emulate_media(media="print")
    page.screenshot(path=SCREENSHOTS / "report-citizen-print.png", full_page=True)
    expect(page.get_by_role("navigation", name="Hoofdmenu")).to_be_hidden()
    # what "print or save as PDF" gives: Chromium's own PDF of the page, in print media
    pdf = SCREENSHOTS.parent / "report-citizen.pdf"
    pdf.write_bytes(page.pdf(format="A4", print_background=True))
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b(?!s)", printed)) >= 2
    page.emulate_media(media="screen")

    with page.expect_download() as download:
        page.get_by_role("button", name="Downloaden (JSON)").click()
    saved = tmp_path / "report.json"
    download.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["version"] == "citizen" and document["subject"] == citizen["subject"]

    page.goto("/console/report")
    page.get_by_label("BSN", exact=True).fill(citizen["bsn"])
    page.get_by_label("Voor de privacy officer (volledig)").check()
    page.get_by_role("button", name="Overzicht maken").click()
    report = page.locator("article.report")
    expect(report).to_contain_text("Politie")
    expect(report).to_contain_text("Vertrouwelijk tot")
    expect(page.get_by_role("note")).to_contain_text("vertrouwelijke uitwisseling")
    check_page(page, "report-officer")

    page.get_by_role("link", name="English").click()  # after a form the switch lands on the start page
    page.goto("/console/report")
    page.get_by_label("BSN", exact=True).fill(citizen["bsn"])
    page.get_by_role("button", name="Make the report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Who received information about you?")
    check_page(page, "report-citizen-en")


def test_a_partners_dashboard_counts_the_exchanges_that_reached_it(
    console_page: Page, citizen: dict[str, Any]
) -> None:
    # A partner's scope holds no decisions, only what reached it: both signals reached Veilig Thuis.
    page = console_page
    sign_in(page, "veilig-thuis-amsterdam", "Vera Thuis")
    page.goto("/console/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    permitted = int(page.locator("ul.totals").locator("strong").first.inner_text())
    assert permitted >= 2
    check_page(page, "dashboard-partner")


def test_agreements_and_dashboard(officer: Page) -> None:
    page = officer
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Overeenkomsten").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Convenanten")
    expect(page.locator("main")).to_contain_text("zvh-casusoverleg-amsterdam")
    expect(page.locator("main")).to_contain_text("Van kracht: versie 2")
    check_page(page, "agreements")

    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    flow = page.locator("canvas[data-chart='flow-chart']")
    expect(flow).to_be_visible()
    # Chart.js drew into the canvas (console.js ran under the CSP)
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas'))")
    totals = page.locator("ul.totals")
    expect(totals).to_contain_text("uitwisselingen verstrekt")
    permitted = int(totals.locator("strong").first.inner_text())
    assert permitted >= 5
    expect(page.get_by_role("region", name="Weigeringen naar reden, als tabel")).to_contain_text(
        "Categorie of doel valt buiten het convenant"
    )
    check_page(page, "dashboard")


def test_integrity_verify_and_prove_a_record(
    officer: Page, stack: Stack, citizen: dict[str, Any], tmp_path: Path
) -> None:
    page = officer
    accepted = next(
        r
        for r in stack.audit_records(signal_id=citizen["signals"][0])
        if r["event_type"].endswith("accepted.v1")
    )
    seq = accepted["seq"]
    # Veilig Thuis witnesses the log: its cosignature shows beside the newest checkpoint
    vt = "veilig-thuis-amsterdam"
    keys = KeyRing(stack.keys_dir, generate_missing=False, scope=KeyScope.organisation(vt))
    witnessed = Witness(
        vt,
        keys.ed25519_private(vt),
        Registry.load(CONFIG_DIR, keys).ed25519_public("audit"),
        tmp_path / "witness.json",
        stack.url("audit"),
        lambda: stack.token(vt, Role.RECIPIENT, audience=("audit",)),
    ).witness()
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Integriteit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Integriteit van het logboek")
    expect(page.locator("main")).to_contain_text("Wortelhash")
    expect(page.locator("main")).to_contain_text(
        f"Veilig Thuis Amsterdam-Amstelland: ondertekende het controlepunt van {witnessed.size} regels mee"
    )
    page.get_by_role("button", name="Nu controleren").click()
    expect(page.locator("#verification")).to_contain_text("Intact")
    expect(page.locator("#verification")).to_contain_text(OFFICER)
    check_page(page, "integrity")

    page.get_by_label("Regelnummer").fill(str(seq))
    page.get_by_role("button", name="Toon het bewijs").click()
    expect(page).to_have_url(re.compile(rf"/console/records/{seq}/proof$"))
    expect(page.get_by_role("status")).to_contain_text("Gecontroleerd")
    check_page(page, "proof")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download het bewijs (.tlog-proof)").click()
    saved = tmp_path / "record.tlog-proof"
    download.value.save_as(saved)
    # checked here with the audit service's public key from the registry, not the page's word
    text = saved.read_text()
    parsed = parse_proof_file(text)
    assert parsed.extra is not None and json.loads(parsed.extra)["seq"] == seq
    origin = parsed.signed_checkpoint.split("\n", 1)[0]
    audit_key = Registry.load(CONFIG_DIR, KeyRing(stack.keys_dir, generate_missing=False)).ed25519_public(
        "audit"
    )
    assert verify_proof_file(text, parsed.extra, Verifier(origin, audit_key)).index == seq - 1


def test_the_records_the_log_does_not_believe_have_a_page_of_their_own(officer: Page, stack: Stack) -> None:
    # A partner writes a copy of one of Amsterdam's acceptances, unsigned, onto the receipts topic.
    accepted = outside_browser(newest_value, stack, "signals.accepted.v1", SignalAccepted.event_type)[0]
    planted = accepted | {"signal_id": str(uuid.uuid4()), "subject_pseudonym": "f" * 32}
    where = outside_browser(plant, stack, json.dumps(planted).encode(), SignalAccepted.event_type, "f" * 32)

    def flagged() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in stack.audit_records(event_type=SignalAccepted.event_type)
                if r["kafka_topic"] == stack.topic(RECEIPTS)
                and (r["kafka_partition"], r["kafka_offset"]) == where
            ),
            None,
        )

    record = eventually(flagged)
    assert record["decision"] == "forged"
    # Amsterdam's officer (named as its source) finds it on the integrity view's own page.
    page = officer
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Integriteit").click()
    page.get_by_role("link", name="Niet te vertrouwen logregels").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Niet te vertrouwen logregels")
    expect(page.locator("main")).to_contain_text(f"#{record['seq']}: ")
    expect(page.locator("main")).to_contain_text("beweerde: een feit")  # 'claimed fact', in words
    expect(page.locator("main")).to_contain_text("signaal ontvangen hoort niet in")  # misplaced
    check_page(page, "flagged")


# Every page, both languages: no code, no English reason on a Dutch page ---------------------------

PLAIN_PAGES = (
    "/console/",
    "/console/search",
    "/console/report",
    "/console/agreements",
    "/console/dashboard",
    "/console/integrity",
    "/console/integrity/flagged",
    "/console/compliance",
)
MACHINE_TEXT = "pre, code, script"
"""What a page shows as a machine's text on purpose (a record's JSON to prove, a signed
checkpoint, a pseudonym the officer may search for): not read for codes."""


def raw_codes() -> dict[str, set[str]]:
    """Every code a page must name rather than show, by kind, from where each is defined."""
    from tests.unit.test_console_vocabulary import codes

    found = codes()
    return {
        "category": found["category"],
        "purpose": found["purpose"],
        "event type": {*CATALOGUE, UNREADABLE_TYPE}
        | {event_type.removeprefix(TYPE_PREFIX).removesuffix(".v1") for event_type in CATALOGUE},
        "decision": found["decision"],
        "role": found["role"],
        "rejection": {code for code in found["rejection"] if "_" in code},  # one word: an English word
    }  # fmt: skip


def english_reasons() -> set[str]:
    """The fixed words of each of consent's English reason sentences."""
    fixed = set()
    for template in TEMPLATES.values():
        parts = (part.strip(" ;:") for part in re.split(r"\{\w+\}", template))
        fixed |= {part for part in parts if " " in part}  # words, not one (category, suspended)
    return fixed


def untranslated(text: str, language: str) -> list[str]:
    """What `text` (a page's visible text and labels) shows that it should have said in words:
    on a Dutch page every code and every English reason; on an English page the codes that are
    no English words (huiselijk_geweld, receipt-opened) and every Dutch sentence of the
    catalogue."""
    found = []
    for kind, codes in raw_codes().items():
        for code in codes:
            if language == "en" and re.fullmatch(r"[a-z]+", code) and kind != "category":
                continue  # permit, read, recipient: English words on an English page
            if kind == "category" and re.fullmatch(r"[a-z]+", code):
                continue  # ondermijning: a Dutch word, in purposes' names and agreements' titles too
            if re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-]|\.\w)", text):
                found.append(f"{kind} {code!r}")
    if language == "nl":
        found += [f"English reason {words!r}" for words in english_reasons() if words in text]
    else:
        found += [
            f"Dutch text {NL[key]!r} ({key})"
            for key in NL
            if NL[key] != EN[key] and len(NL[key]) >= 20 and "{" not in NL[key] and NL[key] in text
        ]
    return sorted(found)


def test_the_check_for_untranslated_text_finds_what_it_looks_for() -> None:
    assert untranslated("Categorie huiselijk_geweld · Besluit deny", "nl") == [
        "category 'huiselijk_geweld'",
        "decision 'deny'",
    ]
    assert untranslated("agreement x v2: category y is not covered", "nl") == [
        "English reason 'is not covered'"
    ]
    assert untranslated("Besluit over delen: Gedeeld · Huiselijk geweld", "nl") == []
    assert untranslated("Decision: permit, receipt-opened", "en") == ["decision 'receipt-opened'"]
    assert untranslated(NL["citizen.intro"], "en") != []


def visible_text(page: Page) -> str:
    """The visible text without the machine's (pre, code), and every label."""
    text: str = page.evaluate(
        """selector => {
            const hidden = [...document.querySelectorAll(selector)];
            hidden.forEach(node => node.setAttribute('data-was-hidden', node.style.display));
            hidden.forEach(node => node.style.display = 'none');
            const visible = document.body.innerText;
            hidden.forEach(node => node.style.display = node.getAttribute('data-was-hidden') || '');
            const labelled = '[aria-label], [title], [placeholder], [alt], option';
            const labels = [...document.querySelectorAll(labelled)]
                .filter(node => !node.closest(selector))
                .flatMap(node => [node.getAttribute('aria-label'), node.getAttribute('title'),
                                  node.getAttribute('placeholder'), node.getAttribute('alt'),
                                  node.tagName === 'OPTION' ? node.textContent : null]);
            return [document.title, visible, ...labels].filter(Boolean).join('\\n');
        }""",
        MACHINE_TEXT,
    )
    return text


def walk(page: Page, language: str, name: str, problems: list[str]) -> None:
    """Screenshot and axe check the page, and note what it shows untranslated."""
    page.wait_for_load_state()
    check_page(page, f"words-{language}-{name}")
    if "compliance" not in name:  # docs/compliance.md is a document, not the console's text
        problems.extend(f"{page.url}: {what}" for what in untranslated(visible_text(page), language))


def test_every_page_speaks_the_readers_language_in_words(
    console_page: Page, stack: Stack, citizen: dict[str, Any]
) -> None:
    page = console_page
    sign_in(page, "safety-chain", OFFICER)  # the platform's officer reads the whole log
    seq = stack.audit_records(signal_id=citizen["signals"][0])[0]["seq"]
    problems: list[str] = []
    for language in ("nl", "en"):
        page.goto(f"/console/language/{language}?next=/console/")
        expect(page.locator("html")).to_have_attribute("lang", language)

        for path in PLAIN_PAGES:
            page.goto(path)
            walk(page, language, path.strip("/").replace("/", "-") or "home", problems)
        for number, signal in enumerate(citizen["signals"]):
            page.goto(f"/console/signals/{signal}")
            walk(page, language, f"timeline-{number}", problems)
        page.goto(f"/console/records/{seq}/proof")
        walk(page, language, "proof", problems)
        page.goto("/console/search")
        page.locator("#bsn").fill(citizen["bsn"])
        page.locator("form.filters button[type=submit]").click()
        walk(page, language, "search-results", problems)
        for version in ("citizen", "officer"):
            page.goto("/console/report")
            page.locator("#bsn").fill(citizen["bsn"])
            page.locator(f"#version-{version}").check()
            page.locator("form button[type=submit]").last.click()
            expect(page.locator("article.report")).to_be_visible()
            walk(page, language, f"report-{version}", problems)
            if version == "citizen":
                report = page.locator("article.report")
                expect(report).not_to_contain_text(citizen["subject"])  # no pseudonym
                expect(report).not_to_contain_text("#")  # no record numbers
                expect(report).not_to_contain_text("zvh-casusoverleg-amsterdam")  # no agreement ids
                # Dutch law stays Dutch on an English page, marked so for a screen reader
                marked = report.locator('dd [lang="nl"]')
                expect(marked.first).to_be_visible() if language == "en" else expect(marked).to_have_count(0)
    assert not problems, "pages that show codes instead of words:\n" + "\n".join(sorted(set(problems)))


def test_a_search_filled_in_wrongly_says_what_is_wrong_in_words(
    officer: Page, citizen: dict[str, Any]
) -> None:
    page = officer
    page.goto("/console/search")
    page.get_by_label("BSN", exact=True).fill("123456789")  # fails the eleven-test
    page.get_by_role("button", name="Zoeken", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "BSN: een BSN bestaat uit negen cijfers en moet de elfproef doorstaan."
    )
    assert "123456789" not in page.content()  # never echoed, not even a wrong one
    page.get_by_label("BSN", exact=True).fill(citizen["bsn"])
    page.get_by_label("Of: pseudoniem").fill(citizen["subject"])
    page.get_by_role("button", name="Zoeken", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Vul een BSN of een pseudoniem in, niet allebei.")
    assert not untranslated(visible_text(page), "nl")
    check_page(page, "search-problems")
