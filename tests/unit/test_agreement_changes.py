"""What widens an agreement (four eyes) and what narrows it (at once), as a table."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.consent.changes import widenings
from shared.contracts.agreements import Agreement, AgreementStatus, LegalBasis, Recipient
from shared.contracts.signal import Category
from shared.contracts.widenings import WideningCode, parse_widening, widening

CURRENT = Agreement(
    id="huiselijk-geweld-amsterdam",
    version=3,
    title="Convenant huiselijk geweld",
    legal_basis=LegalBasis(law="Wmo 2015", article="art. 5.2.6"),
    providers=("gm0363",),
    recipients=(
        Recipient(partner="veilig-thuis-amsterdam", fields=("category", "severity", "subject.name")),
        Recipient(partner="zvh-amsterdam", fields=("category",), confidential_days=365),
    ),
    categories=(Category.HUISELIJK_GEWELD, Category.KINDERMISHANDELING),
    purposes=("veiligheid_huiselijk_geweld", "zorg_en_veiligheid"),
    identifying=True,
    requires_subject_consent=True,
    objection_blocks=True,
    valid_from=date(2026, 1, 1),
    valid_until=date(2027, 12, 31),
    retention_days=365,
)
VT, ZVH = CURRENT.recipients


def changed(**update: Any) -> Agreement:
    return CURRENT.model_copy(update={"version": 4, **update})


WIDENING: dict[str, tuple[Agreement, str]] = {
    "a field": (
        changed(recipients=(VT.model_copy(update={"fields": (*VT.fields, "subject.bsn")}), ZVH)),
        "veilig-thuis-amsterdam receives subject.bsn",
    ),
    "a recipient": (
        changed(recipients=(*CURRENT.recipients, Recipient(partner="riec-amsterdam", fields=("category",)))),
        "recipient riec-amsterdam added",
    ),
    "a provider": (changed(providers=("gm0363", "gm0599")), "provider gm0599 added"),
    "a category": (
        changed(categories=(*CURRENT.categories, Category.ZORGMIJDING)),
        "category zorgmijding added",
    ),
    "a purpose": (changed(purposes=(*CURRENT.purposes, "opsporing")), "purpose opsporing added"),
    "a longer retention": (changed(retention_days=730), "retention 365 -> 730 days"),
    "no consent needed": (
        changed(requires_subject_consent=False),
        "no longer requires the subject's consent",
    ),
    "objections no longer block": (changed(objection_blocks=False), "an objection no longer stops sharing"),
    "another legal basis": (
        changed(legal_basis=LegalBasis(law="AVG", article="art. 6 lid 1 sub e")),
        "legal basis Wmo 2015, art. 5.2.6 -> AVG, art. 6 lid 1 sub e",
    ),
    "valid longer": (changed(valid_until=date(2029, 12, 31)), "valid until 2029-12-31"),
    "open-ended": (changed(valid_until=None), "valid until further notice"),
    "valid earlier": (changed(valid_from=date(2025, 6, 1)), "valid from 2025-06-01 instead of 2026-01-01"),
    "withheld from citizens": (
        changed(recipients=(VT.model_copy(update={"confidential_days": 730}), ZVH)),
        "veilig-thuis-amsterdam's exchanges withheld from citizens for 730 days instead of 0",
    ),
}

NARROWING: dict[str, Agreement] = {
    "a field fewer": changed(recipients=(VT.model_copy(update={"fields": ("category", "severity")}), ZVH)),
    "a recipient fewer": changed(recipients=(VT,)),
    "a category fewer": changed(categories=(Category.HUISELIJK_GEWELD,)),
    "a purpose fewer": changed(purposes=("veiligheid_huiselijk_geweld",)),
    "a shorter retention": changed(retention_days=90),
    "valid shorter": changed(valid_until=date(2026, 12, 31)),
    "a new title": changed(title="Convenant aanpak huiselijk geweld"),
    "suspension": changed(status=AgreementStatus.SUSPENDED),
    "no longer confidential": changed(recipients=(VT, ZVH.model_copy(update={"confidential_days": None}))),
}


@pytest.mark.parametrize("case", sorted(WIDENING))
def test_a_widening_change_names_what_it_widens(case: str) -> None:
    proposed, expected = WIDENING[case]
    assert widenings(CURRENT, proposed) == (expected,)


def test_sharing_identifying_data_widens() -> None:
    pseudonymous = Agreement.model_validate(
        {
            **CURRENT.model_dump(),
            "identifying": False,
            "recipients": [{"partner": "zvh-amsterdam", "fields": ["category"]}],
        }
    )
    identifying = pseudonymous.model_copy(update={"version": 4, "identifying": True})
    assert widenings(pseudonymous, identifying) == ("identifying data may be shared",)


def test_resuming_a_suspended_agreement_widens() -> None:
    suspended = CURRENT.model_copy(update={"status": AgreementStatus.SUSPENDED})
    assert widenings(suspended, changed()) == ("resumes a suspended agreement",)


def test_a_new_agreement_widens() -> None:
    assert widenings(None, CURRENT) == ("a new agreement",)


@pytest.mark.parametrize("case", sorted(NARROWING))
def test_a_narrowing_change_widens_nothing(case: str) -> None:
    assert widenings(CURRENT, NARROWING[case]) == ()


def test_a_change_that_narrows_one_thing_and_widens_another_widens() -> None:
    swapped = changed(retention_days=90, purposes=(*CURRENT.purposes, "opsporing"))
    assert widenings(CURRENT, swapped) == ("purpose opsporing added",)


@pytest.mark.parametrize("case", sorted(WIDENING))
def test_every_widening_reads_back_into_its_code(case: str) -> None:
    # the audit console says them in the reader's language from the code (contracts/widenings.py)
    proposed, _ = WIDENING[case]
    for sentence in widenings(CURRENT, proposed):
        read = parse_widening(sentence)
        assert read is not None, sentence
        assert widening(read.code, **read.params) == sentence


def test_every_widening_code_is_written_by_some_change() -> None:
    suspended = CURRENT.model_copy(update={"status": AgreementStatus.SUSPENDED})
    free_text = CURRENT.model_copy(update={"free_text_without_identity": False})
    written = [s for proposed, _ in WIDENING.values() for s in widenings(CURRENT, proposed)]
    written += [*widenings(None, CURRENT), *widenings(suspended, changed())]
    written += widenings(free_text, changed(free_text_without_identity=True))
    written += widenings(CURRENT.model_copy(update={"identifying": False}), changed())
    codes = {read.code for read in map(parse_widening, written) if read is not None}
    assert codes == set(WideningCode), sorted(set(WideningCode) - codes)
