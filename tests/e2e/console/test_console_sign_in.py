"""A privacy officer signs in to the console in a real browser, reads it in both languages and
signs out; a publisher's token does not get in; without a session every page leads to the
sign-in page. Screenshots and an accessibility check on each page shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from shared.plumbing.policy import Role
from tests.e2e.console.browser import check_page, outside_browser, sign_in
from tests.e2e.stack import Stack

PLATFORM = "safety-chain"  # config/organisations.yaml: the platform, whose privacy officer reads all


def test_a_privacy_officer_signs_in_switches_language_and_signs_out(console_page: Page) -> None:
    page = console_page
    # the console asks for a session first
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/$"))
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.get_by_role("heading", level=1)).to_have_text("Aanmelden")
    check_page(page, "sign-in")

    # the first key press reaches the skip link, which leads to the main content
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Naar de inhoud")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    # development sign-in as the platform's privacy officer
    page.get_by_label("Organisatie").select_option(PLATFORM)
    page.get_by_label("Uw naam").fill("Fatima de Groot")
    page.get_by_role("button", name="Aanmelden als privacy officer").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welkom, Fatima de Groot")
    expect(page.get_by_role("banner")).to_contain_text("Safety-chain platformbeheer")
    navigation = page.get_by_role("navigation", name="Hoofdmenu")
    for item in ("Zoeken", "Inzageverzoek", "Overeenkomsten", "Dashboard", "Integriteit"):
        expect(navigation.get_by_role("link", name=item)).to_be_visible()
    check_page(page, "home")

    # English, and back to Dutch
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Fatima de Groot")
    expect(
        page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Subject access")
    ).to_be_visible()
    check_page(page, "home-en")
    page.get_by_role("link", name="Nederlands").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welkom, Fatima de Groot")

    # signing out ends the session
    page.get_by_role("button", name="Afmelden").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in\?session=signed-out$"))
    expect(page.get_by_role("status")).to_have_text("U bent afgemeld.")
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/$"))


def test_a_publishers_token_pasted_in_the_sign_in_form_is_refused(stack: Stack, console_page: Page) -> None:
    page = console_page
    page.goto("/console/sign-in")
    # a valid token for this service, but a publisher's: authenticated, not authorised
    page.get_by_label("Toegangstoken (OAuth 2.0, JWT)").fill(stack.token("gm0363", Role.PUBLISHER))
    page.get_by_role("button", name="Aanmelden met token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")
    expect(page.locator("main")).to_contain_text("only privacy officers read the audit log")
    check_page(page, "sign-in-refused")
    # and no session came of it
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/$"))


def test_without_a_session_the_console_redirects_to_sign_in(console_page: Page) -> None:
    answer = console_page.request.get("/console/", max_redirects=0)
    assert answer.status == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_check_page_fails_on_an_inaccessible_page(console_page: Page) -> None:
    # the check itself is checked: a page without a language and an image without a text
    console_page.set_content('<html><body><img src="data:,"><p>no lang, no alt</p></body></html>')
    with pytest.raises(AssertionError) as failed:
        check_page(console_page, "check-page-self-test")
    assert "image-alt" in str(failed.value) and "html-has-lang" in str(failed.value)


def test_kafka_reads_work_while_the_browser_is_open(stack: Stack, console_page: Page) -> None:
    # Playwright's sync API holds this thread's asyncio loop (asyncio.run fails here while the
    # browser is open): the Stack's Kafka helpers run in a thread beside it
    sign_in(console_page, "gm0363", "F. Fg")
    expect(console_page.get_by_role("banner")).to_contain_text("Gemeente Amsterdam")
    assert stack.topic("audit.checkpoints.v1") in outside_browser(stack.prefixed_topics)
