"""The consent decision as tables: deny by default, every rule alone and in conflict."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.consent.decision import SignalFacts, decide
from shared.contracts.agreements import Agreement, Directive, DirectiveKind, DirectiveScope
from shared.contracts.events import Decision
from shared.contracts.signal import Category

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
VT = "veilig-thuis-amsterdam"


def agreement(**overrides: Any) -> Agreement:
    document: dict[str, Any] = {
        "id": "hg",
        "version": 1,
        "title": "Huiselijk geweld",
        "legal_basis": {"law": "Wmo 2015", "article": "art. 5.2.6"},
        "providers": ["gm0363"],
        "recipients": [{"partner": VT, "fields": ["category", "subject.name"]}],
        "categories": ["huiselijk_geweld"],
        "purposes": ["veiligheid_huiselijk_geweld"],
        "identifying": True,
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "retention_days": 365,
    }
    document.update(overrides)
    return Agreement.model_validate(document)


PLATFORM = None  # a directive the platform's privacy officer recorded, for every municipality's data


def directive(kind: DirectiveKind, minutes: int = 0, by: str | None = "gm0363", **scope: Any) -> Directive:
    """A directive recorded by municipality `by` for its own data (PLATFORM: for all)."""
    return Directive(
        directive_id=uuid.uuid4(),
        kind=kind,
        scope=DirectiveScope(**(scope or {"agreement_id": "hg"})),
        municipality=by,
        recorded_at=NOW - timedelta(hours=1) + timedelta(minutes=minutes),
        recorded_by=by or "safety-chain",
    )


FACTS = SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld")
CONSENT = directive(DirectiveKind.CONSENT_GIVEN)
WITHDRAWN = directive(DirectiveKind.CONSENT_WITHDRAWN, minutes=5)
OBJECTION = directive(DirectiveKind.OBJECTION, minutes=1)
OBJECTION_ON_CATEGORY = directive(DirectiveKind.OBJECTION, category="huiselijk_geweld")
OBJECTION_WITHDRAWN = directive(DirectiveKind.OBJECTION_WITHDRAWN, minutes=10)
OBJECTION_ELSEWHERE = directive(DirectiveKind.OBJECTION, category="ondermijning")

TABLE = [
    # (id, facts, recipient, agreements, directives, expected, reason fragment)
    ("covered", FACTS, VT, [agreement()], (), Decision.PERMIT, "permits"),
    ("no-agreements", FACTS, VT, [], (), Decision.DENY, "no agreement names"),
    ("other-recipient", FACTS, "riec-amsterdam", [agreement()], (), Decision.DENY, "names riec-amsterdam"),
    (
        "other-municipality",
        SignalFacts("gm0599", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld"),
        VT,
        [agreement()],
        (),
        Decision.DENY,
        "municipality gm0599 is not a provider",
    ),
    (
        "other-category",
        SignalFacts("gm0363", Category.RADICALISERING, "veiligheid_huiselijk_geweld"),
        VT,
        [agreement()],
        (),
        Decision.DENY,
        "category radicalisering is not covered",
    ),
    (
        "other-purpose",
        SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "marketing"),
        VT,
        [agreement()],
        (),
        Decision.DENY,
        "purpose marketing is not covered",
    ),
    ("expired", FACTS, VT, [agreement(valid_until="2026-06-30")], (), Decision.DENY, "not valid on"),
    (
        "not-yet-valid",
        FACTS,
        VT,
        [agreement(valid_from="2027-01-01", valid_until=None)],
        (),
        Decision.DENY,
        "not valid on",
    ),
    ("suspended", FACTS, VT, [agreement(status="suspended", version=2)], (), Decision.DENY, "suspended"),
    (
        "consent-required-absent",
        FACTS,
        VT,
        [agreement(requires_subject_consent=True)],
        (),
        Decision.DENY,
        "but absent",
    ),
    (
        "consent-required-given",
        FACTS,
        VT,
        [agreement(requires_subject_consent=True)],
        (CONSENT,),
        Decision.PERMIT,
        "permits",
    ),
    (
        "consent-given-then-withdrawn",
        FACTS,
        VT,
        [agreement(requires_subject_consent=True)],
        (CONSENT, WITHDRAWN),
        Decision.DENY,
        "but was withdrawn",
    ),
    (
        "consent-given-for-the-category",
        FACTS,
        VT,
        [agreement(requires_subject_consent=True)],
        (directive(DirectiveKind.CONSENT_GIVEN, category="huiselijk_geweld"),),
        Decision.PERMIT,
        "permits",
    ),
    ("objection-blocks", FACTS, VT, [agreement()], (OBJECTION,), Decision.DENY, "objected (AVG art. 21)"),
    (
        "objection-on-category-blocks",
        FACTS,
        VT,
        [agreement()],
        (OBJECTION_ON_CATEGORY,),
        Decision.DENY,
        "objected",
    ),
    (
        "objection-withdrawn",
        FACTS,
        VT,
        [agreement()],
        (OBJECTION, OBJECTION_WITHDRAWN),
        Decision.PERMIT,
        "permits",
    ),
    ("objection-elsewhere", FACTS, VT, [agreement()], (OBJECTION_ELSEWHERE,), Decision.PERMIT, "permits"),
    (
        "objection-overridden-by-legal-basis",
        FACTS,
        VT,
        [agreement(objection_blocks=False)],
        (OBJECTION,),
        Decision.PERMIT,
        "overrides the objection",
    ),
]


@pytest.mark.parametrize(
    ("facts", "recipient", "agreements", "directives", "expected", "reason_part"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_decision_table(
    facts: SignalFacts,
    recipient: str,
    agreements: list[Agreement],
    directives: tuple[Directive, ...],
    expected: Decision,
    reason_part: str,
) -> None:
    outcome = decide(facts, recipient, agreements, NOW, directives)
    assert outcome.decision is expected
    assert any(reason_part in reason for reason in outcome.reasons), outcome.reasons


def test_a_permit_carries_its_obligations() -> None:
    outcome = decide(FACTS, VT, [agreement()], NOW)
    assert outcome.obligations is not None
    assert outcome.obligations.fields == ("category", "subject.name")
    assert outcome.obligations.retention_days == 365
    assert outcome.obligations.identifying is True
    assert outcome.obligations.legal_basis == "Wmo 2015, art. 5.2.6"
    assert outcome.agreement is not None and outcome.agreement.id == "hg"


def test_when_two_agreements_permit_the_one_sharing_fewer_fields_applies() -> None:
    broad = agreement(
        id="hg-broad", recipients=[{"partner": VT, "fields": ["category", "summary", "subject.name"]}]
    )
    narrow = agreement(id="hg-narrow", recipients=[{"partner": VT, "fields": ["category"]}])
    outcome = decide(FACTS, VT, [broad, narrow], NOW)
    assert outcome.decision is Decision.PERMIT
    assert outcome.agreement is not None and outcome.agreement.id == "hg-narrow"
    assert outcome.fields == ("category",)
    assert any("hg-broad v1 also permits" in reason for reason in outcome.reasons)


def test_when_an_overlapping_agreement_is_blocked_by_objection_the_other_may_still_permit() -> None:
    blocked = agreement(id="hg-a", recipients=[{"partner": VT, "fields": ["category"]}])
    overriding = agreement(id="hg-b", objection_blocks=False)
    objection = directive(DirectiveKind.OBJECTION, category="huiselijk_geweld")
    outcome = decide(FACTS, VT, [blocked, overriding], NOW, (objection,))
    assert outcome.decision is Decision.PERMIT
    assert outcome.agreement is not None and outcome.agreement.id == "hg-b"
    assert any("overrides the objection" in reason for reason in outcome.reasons)


# Rights follow the controller (ADR 0009): what governs gm0363's signal are the directives gm0363
# recorded and those the platform's privacy officer recorded; gm0518's never do.
OWN, OTHER = "gm0363", "gm0518"
OBJ, LIFT, YES, NO = "objection", "objection_withdrawn", "consent_given", "consent_withdrawn"
CONTROLLERS = [
    # (id, (kind, recorded by) in the order recorded, requires consent, decision for OWN's signal)
    ("another-municipality-withdraws-my-objection", [(OBJ, OWN), (LIFT, OTHER)], False, Decision.DENY),
    ("another-municipality-objects-for-its-own-data", [(OBJ, OTHER)], False, Decision.PERMIT),
    ("i-withdraw-my-own-objection", [(OBJ, OWN), (LIFT, OWN)], False, Decision.PERMIT),
    ("the-platform-objects-for-all", [(OBJ, PLATFORM)], False, Decision.DENY),
    ("i-cannot-lift-the-platforms-objection", [(OBJ, PLATFORM), (LIFT, OWN)], False, Decision.DENY),
    ("the-platform-lifts-my-objection", [(OBJ, OWN), (LIFT, PLATFORM)], False, Decision.PERMIT),
    ("i-object-after-the-platform-lifted", [(LIFT, PLATFORM), (OBJ, OWN)], False, Decision.DENY),
    ("another-municipalitys-consent-is-not-mine", [(YES, OTHER)], True, Decision.DENY),
    ("another-municipality-withdraws-my-consent", [(YES, OWN), (NO, OTHER)], True, Decision.PERMIT),
    ("the-platform-consents-for-all", [(YES, PLATFORM)], True, Decision.PERMIT),
    ("i-withdraw-consent-the-platform-gave", [(YES, PLATFORM), (NO, OWN)], True, Decision.DENY),
    ("i-cannot-give-consent-the-platform-withdrew", [(NO, PLATFORM), (YES, OWN)], True, Decision.DENY),
    ("the-platform-withdraws-my-consent", [(YES, OWN), (NO, PLATFORM)], True, Decision.DENY),
    ("a-platform-consent-does-not-lift-my-objection", [(OBJ, OWN), (YES, PLATFORM)], False, Decision.DENY),
]


@pytest.mark.parametrize(
    "recorded,requires_consent,expected",
    [pytest.param(*row[1:], id=row[0]) for row in CONTROLLERS],
)
def test_a_signal_is_governed_by_its_municipalitys_and_the_platforms_directives_only(
    recorded: list[tuple[str, str | None]], requires_consent: bool, expected: Decision
) -> None:
    directives = tuple(
        directive(DirectiveKind(kind), minutes=i, by=by, category="huiselijk_geweld")
        for i, (kind, by) in enumerate(recorded)
    )
    governed = agreement(requires_subject_consent=requires_consent, objection_blocks=True)
    assert decide(FACTS, VT, [governed], NOW, directives).decision is expected


def test_an_agreement_that_expires_mid_stream_permits_before_and_denies_after() -> None:
    ending = agreement(valid_until="2026-11-28")
    assert decide(FACTS, VT, [ending], NOW).decision is Decision.PERMIT
    assert decide(FACTS, VT, [ending], NOW + timedelta(days=1)).decision is Decision.DENY


def test_a_deny_explains_every_agreement_it_considered() -> None:
    outcome = decide(
        SignalFacts("gm0599", Category.RADICALISERING, "x"), VT, [agreement(id="a"), agreement(id="b")], NOW
    )
    assert outcome.decision is Decision.DENY
    assert len(outcome.reasons) == 2
    assert outcome.reasons[0].startswith("agreement a v1:")


def test_an_agreement_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        agreement(recipients=[{"partner": "x", "fields": ["subject.shoe_size"]}])


def test_a_non_identifying_agreement_may_not_share_identifying_fields() -> None:
    with pytest.raises(ValueError, match="not identifying"):
        agreement(identifying=False)


def test_an_agreement_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before valid_from"):
        agreement(valid_from=date(2026, 6, 1), valid_until=date(2026, 1, 1))


def test_a_directive_scope_names_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        DirectiveScope()
    with pytest.raises(ValueError, match="exactly one"):
        DirectiveScope(agreement_id="hg", category=Category.HUISELIJK_GEWELD)


def test_a_decision_carries_the_confidentiality_of_its_recipient() -> None:
    police = "politie-eenheid-amsterdam"
    marked = agreement(
        recipients=[
            {"partner": VT, "fields": ["category"]},
            {"partner": police, "fields": ["category"], "confidential_days": 730},
        ]
    )
    permitted = decide(FACTS, police, [marked], NOW)
    assert permitted.decision is Decision.PERMIT
    assert permitted.confidential_until(NOW) == NOW.date() + timedelta(days=730)
    assert decide(FACTS, VT, [marked], NOW).confidential_until(NOW) is None
    # a refusal is as confidential as the strictest agreement naming the recipient
    stricter = agreement(
        id="other",
        categories=["ondermijning"],
        recipients=[{"partner": police, "fields": ["category"], "confidential_days": 1825}],
    )
    suspended = agreement(status="suspended", recipients=[r.model_dump() for r in marked.recipients])
    refused = decide(FACTS, police, [suspended, stricter], NOW)
    assert refused.decision is Decision.DENY
    assert refused.confidential_until(NOW) == NOW.date() + timedelta(days=1825)
    assert decide(FACTS, VT, [], NOW).confidential_until(NOW) is None
