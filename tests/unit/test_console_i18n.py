"""The console speaks Dutch and English: the same texts in both, every text a template asks for
exists, and the request's language is the one the officer chose (else the browser's)."""

from __future__ import annotations

import re
from string import Formatter

import pytest
from starlette.requests import Request

from services.audit.console import ERROR_TITLES
from services.audit.console.i18n import (
    CATALOGUES,
    EN,
    NL,
    Language,
    from_accept_language,
    language_of,
    local_path,
    translate,
)
from services.audit.console.session import SESSION_NOTICES
from services.audit.console.templating import NAVIGATION, TEMPLATES_DIR
from services.audit.queries.report import Version
from services.audit.queries.statistics import REFUSAL_REASONS
from shared.contracts.agreements import DirectiveKind
from shared.contracts.events import Decision

TEMPLATE_KEY = re.compile(r"""\bt\(\s*(["'])(?P<key>[^"']+)\1\s*[,)]""")
"""A literal key: the whole first argument (a key built from a value is chosen by code: see
test_every_text_the_code_chooses_exists)."""


def template_keys() -> dict[str, set[str]]:
    """Each literal `t("...")` of each template."""
    return {
        template.name: {match["key"] for match in TEMPLATE_KEY.finditer(template.read_text(encoding="utf-8"))}
        for template in sorted(TEMPLATES_DIR.glob("*.html"))
    }


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def test_both_languages_have_exactly_the_same_keys() -> None:
    assert set(NL) - set(EN) == set(), "in Dutch only"
    assert set(EN) - set(NL) == set(), "in English only"
    assert set(CATALOGUES) == set(Language)


def test_a_text_names_the_same_parameters_in_both_languages() -> None:
    for key in NL:
        assert placeholders(NL[key]) == placeholders(EN[key]), key


def test_every_text_a_template_asks_for_exists() -> None:
    found = template_keys()
    assert found["base.html"], "the layout asks for texts: the pattern finds them"
    for template, keys in found.items():
        missing = keys - set(NL)
        assert not missing, f"{template} asks for {sorted(missing)}"


def test_every_text_the_code_chooses_exists() -> None:
    chosen = {item.key for item in NAVIGATION} | set(ERROR_TITLES.values()) | {"error.other"}
    chosen |= set(SESSION_NOTICES.values())
    # the pages pick these by a value (report.html, "report.<name>." + value)
    chosen |= {f"report.version.{version.value}" for version in Version}
    chosen |= {f"report.decision.{decision.value}" for decision in Decision}
    chosen |= {f"report.receipt.{status}" for status in ("opened", "refused")}
    chosen |= {f"report.directive.{kind.value}" for kind in DirectiveKind}
    chosen |= {f"agreements.kind.{kind}" for kind in ("published", "proposal")}
    chosen |= {f"dashboard.reason.{category}" for _, category in REFUSAL_REASONS} | {"dashboard.reason.other"}
    assert chosen - set(NL) == set()


def test_translate_fills_in_parameters_and_refuses_an_unknown_key() -> None:
    assert translate(Language.EN, "home.welcome", person="F. de Groot") == "Welcome, F. de Groot"
    assert translate(Language.NL, "home.welcome", person="F. de Groot") == "Welkom, F. de Groot"
    with pytest.raises(KeyError):
        translate(Language.NL, "no.such.text")


def request_with(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/console/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Language.NL),  # Dutch by default
        ({"accept-language": "en-GB,en;q=0.9"}, Language.EN),
        ({"accept-language": "fr-FR, de;q=0.9, nl;q=0.5, en;q=0.4"}, Language.NL),
        ({"accept-language": "en;q=0, nl-BE;q=0.3"}, Language.NL),  # q=0: not acceptable
        ({"accept-language": "fr, de"}, Language.NL),
        ({"accept-language": "en", "cookie": "lang=nl"}, Language.NL),  # the officer's choice wins
        ({"accept-language": "nl", "cookie": "lang=en"}, Language.EN),
        ({"cookie": "lang=xx"}, Language.NL),  # an unknown choice is ignored
    ],
)
def test_the_language_is_the_cookie_else_the_browsers_else_dutch(
    headers: dict[str, str], expected: Language
) -> None:
    assert language_of(request_with(headers)) is expected


def test_accept_language_between_equal_qualities_takes_the_first() -> None:
    assert from_accept_language("nl, en") is Language.NL
    assert from_accept_language("en, nl") is Language.EN
    assert from_accept_language("en;q=garbage, nl;q=0.1") is Language.NL


@pytest.mark.parametrize(
    "target",
    ["//evil.example/console", "https://evil.example/console/", "/console\\..", "/v1/audit", "", None],
)
def test_the_language_switch_never_leaves_the_console(target: str | None) -> None:
    assert local_path(target) == "/console/"


def test_the_language_switch_returns_to_a_console_page() -> None:
    assert local_path("/console/search?page=2") == "/console/search?page=2"
