"""The consent decision as a table: deny by default, permit only what an agreement covers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.consent.agreements import Agreement
from services.consent.decision import SignalFacts, decide
from shared.contracts.events import Decision
from shared.contracts.signal import Category

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def agreement(**overrides: object) -> Agreement:
    document: dict[str, object] = {
        "id": "hg",
        "version": 1,
        "title": "Huiselijk geweld",
        "legal_basis": {"law": "Wmo 2015", "article": "art. 5.2.6"},
        "providers": ["gm0363"],
        "recipients": [{"partner": "veilig-thuis-amsterdam", "fields": ["category", "subject.name"]}],
        "categories": ["huiselijk_geweld"],
        "purposes": ["veiligheid_huiselijk_geweld"],
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "retention_days": 365,
    }
    document.update(overrides)
    return Agreement.model_validate(document)


FACTS = SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld")


@pytest.mark.parametrize(
    ("facts", "recipient", "agreements", "expected", "reason_part"),
    [
        (FACTS, "veilig-thuis-amsterdam", [agreement()], Decision.PERMIT, "permits"),
        (FACTS, "veilig-thuis-amsterdam", [], Decision.DENY, "no agreement names"),
        (FACTS, "riec-amsterdam", [agreement()], Decision.DENY, "no agreement names riec-amsterdam"),
        (
            SignalFacts("gm0599", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld"),
            "veilig-thuis-amsterdam",
            [agreement()],
            Decision.DENY,
            "municipality gm0599 is not a provider",
        ),
        (
            SignalFacts("gm0363", Category.RADICALISERING, "veiligheid_huiselijk_geweld"),
            "veilig-thuis-amsterdam",
            [agreement()],
            Decision.DENY,
            "category radicalisering is not covered",
        ),
        (
            SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "marketing"),
            "veilig-thuis-amsterdam",
            [agreement()],
            Decision.DENY,
            "purpose marketing is not covered",
        ),
        (
            FACTS,
            "veilig-thuis-amsterdam",
            [agreement(valid_until="2026-06-30")],
            Decision.DENY,
            "not valid on",
        ),
        (
            FACTS,
            "veilig-thuis-amsterdam",
            [agreement(valid_from="2027-01-01", valid_until=None)],
            Decision.DENY,
            "not valid on",
        ),
    ],
    ids=[
        "covered",
        "no-agreements",
        "other-recipient",
        "other-municipality",
        "other-category",
        "other-purpose",
        "expired",
        "not-yet-valid",
    ],
)
def test_decision_table(
    facts: SignalFacts, recipient: str, agreements: list[Agreement], expected: Decision, reason_part: str
) -> None:
    outcome = decide(facts, recipient, agreements, NOW)
    assert outcome.decision is expected
    assert any(reason_part in reason for reason in outcome.reasons), outcome.reasons


def test_a_permit_carries_the_agreed_fields_and_the_agreement() -> None:
    outcome = decide(FACTS, "veilig-thuis-amsterdam", [agreement()], NOW)
    assert outcome.fields == ("category", "subject.name")
    assert outcome.agreement is not None and outcome.agreement.id == "hg"


def test_when_one_of_two_agreements_covers_the_signal_it_permits_and_names_that_one() -> None:
    expired = agreement(id="hg-old", valid_until="2025-12-31", valid_from="2025-01-01")
    current = agreement(id="hg-new")
    outcome = decide(FACTS, "veilig-thuis-amsterdam", [expired, current], NOW)
    assert outcome.decision is Decision.PERMIT
    assert outcome.agreement is not None and outcome.agreement.id == "hg-new"


def test_a_deny_explains_every_agreement_it_considered() -> None:
    outcome = decide(
        SignalFacts("gm0599", Category.RADICALISERING, "x"),
        "veilig-thuis-amsterdam",
        [agreement(id="a"), agreement(id="b")],
        NOW,
    )
    assert outcome.decision is Decision.DENY
    assert len(outcome.reasons) == 2
    assert outcome.reasons[0].startswith("agreement a v1:")


def test_an_agreement_with_an_unknown_field_is_refused_when_loaded() -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        agreement(recipients=[{"partner": "x", "fields": ["subject.shoe_size"]}])


def test_an_agreement_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before valid_from"):
        agreement(valid_from=date(2026, 6, 1), valid_until=date(2026, 1, 1))
