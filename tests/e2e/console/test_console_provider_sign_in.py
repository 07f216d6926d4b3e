"""People sign in to the console at their own organisation's identity provider: a real Keycloak
(tests/conftest.py `keycloak`, one realm per organisation), its own login page, in Chromium.

A privacy officer of Amsterdam signs in on Amsterdam's login page and reads Amsterdam's records;
Rotterdam's privacy officer, signed in at Rotterdam's, finds none of them. When the session's
access token ends, the browser goes back to the provider and returns without a prompt; signing
out ends the session at the provider too. A person without the privacy officer's role gets in
nowhere, and a person disabled at the provider cannot sign in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devstack.kafka import KafkaAccess
from devstack.realms import Person
from services.audit.console.providers import PROVIDER_COOKIE
from services.audit.console.session import SESSION_COOKIE
from shared.plumbing.policy import Role
from tests.conftest import Keycloak, fresh_prefix
from tests.e2e.citizens import publish_citizen
from tests.e2e.console.browser import check_page
from tests.e2e.stack import Stack


def provider_url(keycloak: Keycloak) -> str:
    """Keycloak as the console and the browser reach it here: by the name `localhost`, so that
    the provider is another site than the console (127.0.0.1), as it is in production, and the
    session cookie (SameSite=Strict) meets what it meets there after the provider's redirect."""
    return keycloak.base_url.replace("127.0.0.1", "localhost")


def as_another_site(keycloak: Keycloak, target: Path) -> Path:
    """The Keycloak config copy (every realm also the console's OpenID provider, its `sign_in`),
    with Keycloak named `localhost` (`provider_url`)."""
    config = target / "config"
    shutil.copytree(keycloak.config_dir, config)
    issuers = config / "issuers.yaml"
    issuers.write_text(
        issuers.read_text(encoding="utf-8").replace(keycloak.base_url, provider_url(keycloak)),
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def stack(
    kafka_access: KafkaAccess, keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    config = as_another_site(keycloak, tmp_path_factory.mktemp("provider-config"))
    with Stack(kafka_access, fresh_prefix(), tmp_path_factory.mktemp("stack"), config_dir=config) as running:
        yield running


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    return publish_citizen(stack)  # two of Amsterdam's signals, delivered and in the log


def person(keycloak: Keycloak, organisation: str, role: Role) -> Person:
    return next(p for p in keycloak.realms.people[organisation] if role in p.roles)


def sign_in_at_provider(
    page: Page, keycloak: Keycloak, organisation: str, who: Person, next_page: str = "/console/"
) -> None:
    """From the console's sign-in page to the organisation's own login page, and sign in there."""
    page.goto(f"/console/sign-in?next={next_page}")
    choose_provider(page, organisation)
    page.wait_for_url(f"{provider_url(keycloak)}/realms/{organisation}/**")
    expect(page.locator("html")).to_have_attribute("lang", "nl")  # the console asked ui_locales=nl
    page.locator("#username").fill(who.username)
    page.locator("#password").fill(keycloak.realms.password(organisation, who.username))
    page.locator("#kc-login").click()


def choose_provider(page: Page, organisation: str) -> None:
    """On the console's sign-in page: go on to `organisation`'s identity provider."""
    section = page.get_by_role("region", name="Aanmelden bij uw organisatie")
    section.get_by_label("Organisatie").select_option(organisation)
    section.get_by_role("button", name="Verder naar de inlogpagina").click()


def search_subject(page: Page, subject: str) -> None:
    page.goto("/console/search")
    page.get_by_label("Of: pseudoniem").fill(subject)
    page.get_by_role("button", name="Zoeken", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Resultaten: "))).to_be_visible()


def end_session(page: Page) -> None:
    """The session cookie as it is once its access token has ended: no valid token."""
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": "ended", "domain": session["domain"], "path": session["path"]}]
    )


def session_cookies(page: Page) -> dict[str, str]:
    return {
        c["name"]: c["value"]
        for c in page.context.cookies()
        if c["name"] in (SESSION_COOKIE, PROVIDER_COOKIE)
    }


def test_a_privacy_officer_signs_in_at_her_organisations_provider_and_reads_its_records(
    console_page: Page, keycloak: Keycloak, citizen: dict[str, Any]
) -> None:
    page = console_page
    officer = person(keycloak, "gm0363", Role.PRIVACY_OFFICER)
    sign_in_at_provider(page, keycloak, "gm0363", officer, next_page="/console/search")
    expect(page).to_have_url(re.compile(r"/console/search$"))
    expect(page.get_by_role("banner")).to_contain_text("Gemeente Amsterdam")
    # her name as her provider gives it; the log records her by her user name
    expect(page.get_by_role("banner")).to_contain_text(f"{officer.first_name} {officer.last_name}")
    # the session is the provider's access token, for this service
    cookies = session_cookies(page)
    assert set(cookies) == {SESSION_COOKIE, PROVIDER_COOKIE}
    check_page(page, "provider-signed-in")

    search_subject(page, citizen["subject"])
    rows = page.get_by_role("region", name="Gevonden logregels, nieuwste eerst").locator("tbody tr")
    expect(rows.first).to_be_visible()
    check_page(page, "provider-search")

    # the access token ends: the browser goes back to Amsterdam's provider, which answers at once
    end_session(page)
    page.goto("/console/agreements")
    expect(page).to_have_url(re.compile(r"/console/agreements$"))
    expect(page.get_by_role("banner")).to_contain_text("Gemeente Amsterdam")
    assert session_cookies(page)[SESSION_COOKIE] not in ("ended", cookies[SESSION_COOKIE])
    # but not round and round: a session that ends again at once leads to the sign-in page
    end_session(page)
    page.goto("/console/dashboard")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/dashboard&session=ended$"))
    choose_provider(page, "gm0363")  # the provider's session lives: in without a prompt
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))

    # signing out ends the session here and at the provider: the next sign-in asks again
    page.get_by_role("button", name="Afmelden").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in\?session=signed-out$"))
    expect(page.get_by_role("status")).to_have_text("U bent afgemeld.")
    assert not session_cookies(page)
    choose_provider(page, "gm0363")
    expect(page.locator("#username")).to_be_visible()  # Keycloak's own login page, asking again


def test_another_organisations_officer_finds_none_of_its_records(
    console_page: Page, keycloak: Keycloak, citizen: dict[str, Any]
) -> None:
    page = console_page
    sign_in_at_provider(page, keycloak, "gm0599", person(keycloak, "gm0599", Role.PRIVACY_OFFICER))
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("banner")).to_contain_text("Gemeente Rotterdam")
    search_subject(page, citizen["subject"])
    expect(page.get_by_text("Niets gevonden binnen uw bevoegdheid.")).to_be_visible()


def test_without_the_privacy_officers_role_the_console_stays_closed(
    console_page: Page, keycloak: Keycloak
) -> None:
    page = console_page
    administrator = person(keycloak, "gm0363", Role.AGREEMENT_ADMINISTRATOR)
    sign_in_at_provider(page, keycloak, "gm0363", administrator)
    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")
    assert SESSION_COOKIE not in session_cookies(page)
    check_page(page, "provider-refused")


def test_a_person_disabled_at_the_provider_cannot_sign_in(console_page: Page, keycloak: Keycloak) -> None:
    page = console_page
    officer = person(keycloak, "om-arrondissement-amsterdam", Role.PRIVACY_OFFICER)
    keycloak.admin.set_user_enabled("om-arrondissement-amsterdam", officer.username, False)
    try:
        sign_in_at_provider(page, keycloak, "om-arrondissement-amsterdam", officer)
        expect(page.locator("#input-error, .kc-feedback-text, [id*=error]").first).to_be_visible()
        assert page.url.startswith(provider_url(keycloak))  # still at the provider: no way in
        assert not session_cookies(page)
    finally:
        keycloak.admin.set_user_enabled("om-arrondissement-amsterdam", officer.username, True)
