# ruff: noqa: E501  (a table of cases: one line each reads best)
"""The console names every code the log holds, in both languages, and says consent's reasons as
sentences in the page's language: the codes come from where they are defined, so a new
category, purpose, event type, decision, role, field or reason without a name fails here."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.audit.console.i18n import CATALOGUES, EN, NL, Language
from services.audit.console.overview import reason_text
from services.audit.console.vocabulary import Words, event_key
from services.audit.log import statements
from services.audit.log.catalogue import CATALOGUE, UNREADABLE_TYPE
from services.audit.log.facts import FLAGGED_DECISIONS
from services.audit.log.flags import FlagCode
from services.audit.log.statements import DECISIONS
from services.consent.agreements import load_agreements
from services.consent.decision import SignalFacts, decide
from shared.contracts.agreements import DELIVERABLE_FIELDS, Agreement, DirectiveKind
from shared.contracts.events import RejectionReason
from shared.contracts.reasons import PATTERNS, TEMPLATES, ReasonCode, parse_reason
from shared.contracts.signal import Category
from shared.contracts.widenings import WideningCode
from shared.plumbing.policy import Role
from shared.plumbing.settings import PROJECT_ROOT
from tests.unit.test_decision import NOW, OBJECTION, VT, agreement, directive

ORGANISATIONS = {"gm0363": "Gemeente Amsterdam", VT: "Veilig Thuis Amsterdam-Amstelland"}


def purposes() -> set[str]:
    """Every purpose an agreement in config/ names."""
    return {
        purpose for a in load_agreements(PROJECT_ROOT / "config" / "agreements") for purpose in a.purposes
    }


def codes() -> dict[str, set[str]]:
    """Every code a page may show, by kind, from where each is defined."""
    return {
        "category": {category.value for category in Category},
        "purpose": purposes(),
        "event": {event_key(event_type) for event_type in (*CATALOGUE, UNREADABLE_TYPE)},
        "decision": set(DECISIONS | FLAGGED_DECISIONS) | {"accepted"},  # accepted: an intake's step
        "role": {role.value for role in Role},
        "field": set(DELIVERABLE_FIELDS),
        "reason": {code.value for code in ReasonCode},
        "rejection": {reason.value for reason in RejectionReason},
        "widening": {code.value for code in WideningCode},
        "flag": {code.value for code in FlagCode},
    }


def key(kind: str, code: str) -> str:
    return code if kind == "event" else f"{kind}.{code}"


@pytest.mark.parametrize("kind", sorted(codes()))
def test_every_code_has_a_name_in_both_languages(kind: str) -> None:
    found = codes()[kind]
    assert found, f"no {kind} codes found: the source moved"
    for language, catalogue in CATALOGUES.items():
        missing = sorted(code for code in found if not catalogue.get(key(kind, code), "").strip())
        assert not missing, f"{kind} codes without a {language.value} name: {missing}"


def test_a_new_category_without_a_name_would_fail() -> None:
    # The check above reads the enum: a code it does not know has no name.
    words = Words(NL, ORGANISATIONS)
    assert words.category("huiselijk_geweld") == "Huiselijk geweld"
    assert "category.brandstichting" not in NL
    assert words.category("brandstichting") == "brandstichting"  # shown as it is, never a crash


def test_every_decision_a_statement_writes_is_in_decisions() -> None:
    # statements.py writes decisions as literals or f-strings; DECISIONS must hold each.
    source = Path(statements.__file__).read_text(encoding="utf-8")
    literals = set(re.findall(r'decision="([^"{]+)"', source))
    literals |= set(re.findall(r'"([a-z-]+)" if [^\n]* else "([a-z-]+)"', source)[0])
    assert literals and literals <= DECISIONS, sorted(literals - DECISIONS)
    prefixes = set(re.findall(r'decision=f"([a-z-]+)\{', source))
    for prefix in prefixes:
        assert any(decision.startswith(prefix) for decision in DECISIONS), prefix


def test_the_dutch_and_english_names_differ_where_they_are_words() -> None:
    # a name copied across untranslated would put Dutch on English pages
    same = [k for k in NL if k.startswith(("decision.", "event.", "reason.")) and NL[k] == EN[k]]
    assert same == ["reason.refusal"]


# consent's reasons -------------------------------------------------------------------------------

SAMPLES: dict[str, str] = {
    "recipient": VT,
    "municipality": "gm0518",
    "category": "huiselijk_geweld",
    "purpose": "veiligheid_huiselijk_geweld",
    "date": "2027-01-02",
    "legal_basis": "Wmo 2015, art. 5.2.6",
    "agreement": "agreement hg v3",
}


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_reason_sentence_reads_back_into_its_code(code: ReasonCode) -> None:
    names = set(PATTERNS[code].groupindex)
    sentence = TEMPLATES[code].format(**{name: SAMPLES[name] for name in names})
    parsed = parse_reason(sentence)
    assert parsed is not None and [r.code for r in parsed.reasons] == [code]
    assert parsed.reasons[0].params == {name: SAMPLES[name] for name in names}


def decisions_table() -> list[tuple[str, list[Agreement], tuple[Any, ...]]]:
    return [
        ("permitted", [agreement()], ()),
        ("no agreement", [], ()),
        ("two permit", [agreement(), agreement(id="hg2", recipients=[{"partner": VT, "fields": ["category"]}])], ()),
        ("suspended, wrong everything", [agreement(status="suspended", providers=["gm0518"], categories=["ondermijning"], purposes=["x_y"], valid_until="2026-02-01")], ()),
        ("revoked", [agreement(status="revoked")], ()),
        ("consent absent", [agreement(requires_subject_consent=True)], ()),
        ("consent withdrawn", [agreement(requires_subject_consent=True)], (directive(DirectiveKind.CONSENT_GIVEN), directive(DirectiveKind.CONSENT_WITHDRAWN, minutes=5))),
        ("objected", [agreement(objection_blocks=True)], (OBJECTION,)),
        ("objection overridden", [agreement(objection_blocks=False)], (OBJECTION,)),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "agreements", "directives"), decisions_table(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_reason_decide_gives_is_said_in_dutch_and_english(
    case: str, agreements: list[Agreement], directives: tuple[Any, ...]
) -> None:
    facts = SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld")
    outcome = decide(facts, VT, agreements, NOW, directives)
    for reason in outcome.reasons:
        assert parse_reason(reason) is not None, f"{case}: {reason!r} is no reason the console can read"
        dutch = Words(NL, ORGANISATIONS).reason(reason)
        english = Words(EN, ORGANISATIONS).reason(reason)
        assert dutch != reason and english != reason
        for code in ("huiselijk_geweld", "veiligheid_huiselijk_geweld", VT, "gm0363"):
            assert code not in dutch and code not in english, (case, dutch, english)


def test_the_issues_example_reads_as_a_dutch_sentence() -> None:
    reason = "agreement zvh-casusoverleg-amsterdam v2: category huiselijk_geweld is not covered"
    assert Words(NL, ORGANISATIONS).reason(reason) == (
        "Convenant zvh-casusoverleg-amsterdam (versie 2): de soort melding (huiselijk geweld)"
        " valt niet onder dit convenant"
    )
    assert Words(EN, ORGANISATIONS).reason(reason) == (
        "Agreement zvh-casusoverleg-amsterdam (version 2): the kind of signal (domestic violence)"
        " is outside this agreement"
    )


def test_a_sentence_that_is_no_reason_of_consents_is_shown_as_it_is() -> None:
    for text in ("opened by the caseworker", "agreement hg v1: something new", "missing_field:subject"):
        assert parse_reason(text) is None
        assert Words(NL, ORGANISATIONS).reason(text) == text


# dates ---------------------------------------------------------------------------------------------


def test_dates_are_written_in_the_pages_language() -> None:
    moment = datetime(2026, 3, 3, 21, 15, tzinfo=UTC)
    assert Words(NL, {}).moment(moment) == "3 maart 2026, 21:15"
    assert Words(EN, {}).moment("2026-03-03T21:15:09.123456Z") == "3 March 2026, 21:15"
    assert Words(CATALOGUES[Language.NL], {}).day(date(2026, 12, 31)) == "31 december 2026"
    assert Words(NL, {}).day(None) == ""


def test_an_event_type_in_anothers_words_is_named() -> None:
    text = "the partner's system could not store nl.safetychain.signal.accepted.v1"
    assert Words(NL, ORGANISATIONS).reason(text) == "the partner's system could not store Signaal ontvangen"
    flagged = "ce_source gm0363 may not write nl.safetychain.signal.accepted.v1"  # the log's own words
    assert (
        Words(NL, ORGANISATIONS).reason(flagged) == "Gemeente Amsterdam mag geen signaal ontvangen schrijven"
    )


def test_the_dashboard_names_why_intake_refused() -> None:
    assert (
        reason_text(Language.NL, "intake:missing_field")
        == "Afgewezen bij ontvangst: verplicht veld ontbreekt"
    )
    assert reason_text(Language.EN, "intake:bad_signature") == "Rejected at intake: signature does not verify"
    assert reason_text(Language.NL, "intake:a_later_code") == "Afgewezen bij ontvangst: a_later_code"


def test_what_a_proposal_widens_is_said_in_the_readers_language() -> None:
    dutch, english = Words(NL, ORGANISATIONS), Words(EN, ORGANISATIONS)
    assert dutch.widening("category zorgmijding added") == "nieuwe soort melding: zorgmijding"
    assert dutch.widening(f"{VT} receives subject.bsn") == (
        "Veilig Thuis Amsterdam-Amstelland ontvangt ook: burgerservicenummer (BSN)"
    )
    assert english.widening("valid from 2025-06-01 instead of 2026-01-01") == (
        "applies earlier, from 1 June 2025 (was 1 January 2026)"
    )
    assert dutch.widening("valid until further notice") == "geldt zonder einddatum"
    assert dutch.widening("something consent never wrote") == "something consent never wrote"


def test_who_acted_is_named_by_organisation_and_person() -> None:
    words = Words(NL, ORGANISATIONS)
    assert words.actor("gm0363/f.fg") == "Gemeente Amsterdam (f.fg)"
    assert words.actor("gm0363/configuration") == "Gemeente Amsterdam (configuratie)"
    assert words.actor("configuration") == "configuratie"
    assert words.actor(None) == ""


def test_why_a_record_was_flagged_is_said_in_the_readers_language() -> None:
    dutch = Words(NL, ORGANISATIONS)
    assert dutch.reason("not signed by gm0363") == "niet ondertekend door Gemeente Amsterdam"
    assert dutch.reason("claimed permit") == "beweerde: gedeeld"
    assert dutch.reason("claimed fact") == "beweerde: een feit"
    assert dutch.reason("nl.safetychain.exchange.decided.v1 does not belong on exchange.receipts.v1") == (
        "besluit over delen hoort niet in exchange.receipts.v1"
    )
