"""Identifying data stays out of pseudonym-only agreements, for every field of every category.

What can identify a person is declared on the fields of the signal contract
(shared/contracts/signal.py); the agreement check is derived from it. The expectations below
are written out by hand on purpose: they are what a privacy officer would list, and the
derivation must agree with them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from cli.consent import agreements_app
from services.consent.enforcement import available_fields
from shared.contracts.agreements import (
    DELIVERABLE_FIELDS,
    FIELD_IDENTIFYING,
    FREE_TEXT_FIELDS,
    IDENTIFYING_FIELDS,
)
from shared.contracts.events import EncryptedPayload, SignalAccepted
from shared.contracts.personal import PersonalPayload
from shared.contracts.signal import (
    IDENTIFYING_KEY,
    SIGNAL_MODELS,
    SUBJECT_MODELS,
    Address,
    Category,
    Identifying,
    attribute_models,
    declared_identifying,
    deliverable_sources,
    signal_adapter,
)

# Identify a person by themselves in every category: the subject's identity, a sole trader's
# KvK number and trade name, and `attributes` as a whole (some category's attributes identify).
ALWAYS_IDENTIFYING = (
    "subject.bsn",
    "subject.name",
    "subject.birth_date",
    "subject.address",
    "subject.kvk_number",
    "subject.trade_name",
    "attributes",
)
# Typed by a person: can name anyone, so identifying unless the agreement explicitly allows it.
ALWAYS_FREE_TEXT = ("summary",)
IDENTIFYING_ATTRIBUTES: dict[Category, tuple[str, ...]] = {
    Category.KINDERMISHANDELING: ("attributes.child_birth_date",),
    Category.ONDERMIJNING: ("attributes.kvk_number",),
    Category.WOONOVERLAST: ("attributes.address",),
}
FREE_TEXT_ATTRIBUTES: dict[Category, tuple[str, ...]] = {
    Category.ONDERMIJNING: ("attributes.sector", "attributes.indicators"),
    Category.JEUGDCRIMINALITEIT: ("attributes.offence_type",),
    Category.ZORGMIJDING: ("attributes.care_refused",),
}
# Fine in a pseudonym-only agreement: never reported.
HARMLESS = ("category", "severity", "occurred_at", "purpose", "municipality", "subject.kind")
HARMLESS_ATTRIBUTES: dict[Category, tuple[str, ...]] = {
    Category.HUISELIJK_GEWELD: ("attributes.children_present", "attributes.risk_assessment"),
    Category.KINDERMISHANDELING: ("attributes.signs",),
    Category.VERWARD_GEDRAG: ("attributes.danger_to_self", "attributes.police_code"),
    Category.RADICALISERING: ("attributes.phase",),
    Category.WOONOVERLAST: ("attributes.nuisance_type",),
    Category.MENSENHANDEL: ("attributes.exploitation_type", "attributes.victim_minor"),
    Category.JEUGDCRIMINALITEIT: ("attributes.school_attendance",),
    Category.ZORGMIJDING: ("attributes.living_conditions",),
}
PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<location>\S+): (?P<message>.+)$")


def identifying(category: Category) -> tuple[str, ...]:
    return ALWAYS_IDENTIFYING + IDENTIFYING_ATTRIBUTES.get(category, ())


def free_text(category: Category) -> tuple[str, ...]:
    return ALWAYS_FREE_TEXT + FREE_TEXT_ATTRIBUTES.get(category, ())


def harmless(category: Category) -> tuple[str, ...]:
    return HARMLESS + HARMLESS_ATTRIBUTES.get(category, ())


def agreement_file(
    category: Category, fields: tuple[str, ...], extra: str = ""
) -> tuple[str, dict[str, int]]:
    """A pseudonym-only agreement naming each field on its own line; and each field's line."""
    head = f"""\
id: pseudonym-only-{category.value.replace("_", "-")}
version: 1
title: Alleen een pseudoniem
legal_basis:
  law: Wet maatschappelijke ondersteuning 2015
  article: art. 5.2.6
providers: [gm0363]
categories: [{category.value}]
purposes: [zorg_en_veiligheid_casusoverleg]
valid_from: 2026-01-01
retention_days: 90
identifying: false
{extra}recipients:
  - partner: zvh-amsterdam
    fields:
"""
    first = head.count("\n") + 1
    lines = {field: first + index for index, field in enumerate(fields)}
    return head + "".join(f"      - {field}\n" for field in fields), lines


def validate(folder: Path) -> tuple[int, list[re.Match[str]]]:
    """`safety-chain agreements validate FOLDER`: exit code and each FILE:LINE problem line. (The
    `agreements` group alone: typer builds the command tree on every call, a quarter the time.)"""
    result = CliRunner().invoke(agreements_app, ["validate", str(folder), "--no-check-registry"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    matches = [PROBLEM_LINE.match(line) for line in lines if not line.endswith("valid")]
    assert all(matches), lines
    return result.exit_code, [match for match in matches if match]


def reported(problems: list[re.Match[str]], path: Path) -> dict[int, str]:
    """Line -> message of the problems reported for one file."""
    return {int(p["line"]): p["message"] for p in problems if p["file"] == str(path)}


def test_every_identifying_field_of_every_category_is_refused_on_its_line(tmp_path: Path) -> None:
    # One pseudonym-only agreement per category, naming every field that category can share.
    expected: dict[Path, dict[int, str]] = {}
    for category in Category:
        refused = identifying(category) + free_text(category)
        text, lines = agreement_file(category, harmless(category) + refused)
        path = tmp_path / f"{category.value}.yaml"
        path.write_text(text)
        expected[path] = {lines[field]: field for field in refused}

    exit_code, problems = validate(tmp_path)

    # Each identifying or free-text field is reported as FILE:LINE on its own line, naming the
    # field; nothing else is reported.
    assert exit_code == 1
    for path, fields_by_line in expected.items():
        found = reported(problems, path)
        assert set(found) == set(fields_by_line), path.name
        for line, field in fields_by_line.items():
            assert field in found[line], (path.name, line)
    assert {p["file"] for p in problems} == {str(path) for path in expected}


def test_the_message_says_how_to_share_identifying_data_or_free_text(tmp_path: Path) -> None:
    text, lines = agreement_file(Category.ONDERMIJNING, ("category", "subject.bsn", "summary"))
    path = tmp_path / "a.yaml"
    path.write_text(text)

    _, problems = validate(tmp_path)

    found = reported(problems, path)
    assert "identifying: true" in found[lines["subject.bsn"]]
    assert "free_text_without_identity: true" in found[lines["summary"]]
    assert "identifying: true" in found[lines["summary"]]


@pytest.mark.parametrize("category", list(Category), ids=[c.value for c in Category])
def test_an_explicit_free_text_allowance_lets_free_text_through_but_nothing_identifying(
    tmp_path: Path, category: Category
) -> None:
    # The agreement records that providers write free text without identifying details.
    text, lines = agreement_file(
        category,
        harmless(category) + free_text(category) + identifying(category),
        extra="free_text_without_identity: true\n",
    )
    path = tmp_path / "a.yaml"
    path.write_text(text)

    exit_code, problems = validate(tmp_path)

    # Free text passes; every identifying field is still refused on its line.
    assert exit_code == 1
    assert set(reported(problems, path)) == {lines[field] for field in identifying(category)}


@pytest.mark.parametrize("category", list(Category), ids=[c.value for c in Category])
def test_an_identifying_agreement_may_share_every_field(tmp_path: Path, category: Category) -> None:
    text, _ = agreement_file(category, harmless(category) + free_text(category) + identifying(category))
    (tmp_path / "a.yaml").write_text(text.replace("identifying: false", "identifying: true"))

    exit_code, problems = validate(tmp_path)

    assert (exit_code, problems) == (0, [])


# --- The classification, derived from the contract models -----------------------------------

CONTRACT_MODELS: tuple[type[BaseModel], ...] = (
    *SIGNAL_MODELS.values(),
    *SUBJECT_MODELS,
    Address,
    *attribute_models().values(),
)


def test_the_derived_classification_is_what_a_privacy_officer_would_list() -> None:
    assert {
        *ALWAYS_IDENTIFYING,
        *(f for fs in IDENTIFYING_ATTRIBUTES.values() for f in fs),
    } == IDENTIFYING_FIELDS
    assert {*ALWAYS_FREE_TEXT, *(f for fs in FREE_TEXT_ATTRIBUTES.values() for f in fs)} == FREE_TEXT_FIELDS
    assert {f for f, kind in FIELD_IDENTIFYING.items() if kind is Identifying.NO} >= {
        *HARMLESS,
        *(f for fs in HARMLESS_ATTRIBUTES.values() for f in fs),
    }


def test_every_deliverable_field_name_is_classified() -> None:
    assert set(FIELD_IDENTIFYING) == DELIVERABLE_FIELDS
    assert all(isinstance(kind, Identifying) for kind in FIELD_IDENTIFYING.values())
    assert (
        IDENTIFYING_FIELDS
        | FREE_TEXT_FIELDS
        | {f for f, kind in FIELD_IDENTIFYING.items() if kind is Identifying.NO}
        == DELIVERABLE_FIELDS
    )


@pytest.mark.parametrize("model", CONTRACT_MODELS, ids=[m.__name__ for m in CONTRACT_MODELS])
def test_every_field_of_every_contract_model_declares_whether_it_identifies(model: type[BaseModel]) -> None:
    # `attributes` is the one exception: it identifies when any of its attributes does.
    undeclared = [
        name
        for name, field in model.model_fields.items()
        if declared_identifying(field) is None and name != "attributes"
    ]
    assert undeclared == []
    # and the declaration is in the published JSON Schema, where readers see it
    properties = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        if name != "attributes":
            assert properties[name][IDENTIFYING_KEY] == declared_identifying(field)


def _free_text(schema: dict[str, Any]) -> bool:
    """A string anyone can type into: no pattern, enum, const or format narrows it."""
    if schema.get("type") == "string":
        return not {"pattern", "enum", "const", "format"} & set(schema)
    return any(_free_text(s) for s in schema.get("anyOf", [])) or (
        "items" in schema and _free_text(schema["items"])
    )


@pytest.mark.parametrize("model", CONTRACT_MODELS, ids=[m.__name__ for m in CONTRACT_MODELS])
def test_no_free_text_field_is_declared_harmless(model: type[BaseModel]) -> None:
    properties = model.model_json_schema()["properties"]
    harmless_free_text = [
        name
        for name, field in model.model_fields.items()
        if declared_identifying(field) is Identifying.NO and _free_text(properties[name])
    ]
    assert harmless_free_text == []


def test_the_derivation_covers_every_attribute_of_every_category_and_every_subject_field() -> None:
    sources = deliverable_sources()
    for category, model in attribute_models().items():
        for name in model.model_fields:
            assert (model, name) in sources[f"attributes.{name}"], (category, name)
            assert (model, name) in sources["attributes"], (category, name)
    subject_sources = {
        part for name, parts in sources.items() if name.startswith("subject.") for part in parts
    }
    for subject_model in SUBJECT_MODELS:
        for name in subject_model.model_fields:
            assert (subject_model, name) in subject_sources, (subject_model.__name__, name)


def test_attributes_as_a_whole_identify_because_some_attribute_does() -> None:
    assert FIELD_IDENTIFYING["attributes"] is Identifying.YES
    assert any(f.startswith("attributes.") for f in IDENTIFYING_FIELDS)


# --- The data behind each name (services/consent/enforcement.available_fields) ---------------

FULL_ATTRIBUTES: dict[Category, dict[str, Any]] = {
    Category.HUISELIJK_GEWELD: {
        "children_present": True,
        "children_count": 2,
        "risk_assessment": "hoog",
        "perpetrator_known": True,
    },
    Category.KINDERMISHANDELING: {
        "child_birth_date": "2018-05-01",
        "school_reported": True,
        "signs": ["getuige"],
    },
    Category.VERWARD_GEDRAG: {"danger_to_self": True, "danger_to_others": True, "police_code": "E33"},
    Category.RADICALISERING: {"phase": "vatbaar", "online_activity": True},
    Category.ONDERMIJNING: {"kvk_number": "12345678", "sector": "horeca", "indicators": ["contant geld"]},
    Category.WOONOVERLAST: {
        "address": {"postcode": "1012AB", "house_number": 1},
        "nuisance_type": "geluid",
        "duration_weeks": 3,
    },
    Category.MENSENHANDEL: {"exploitation_type": "arbeid", "victim_minor": False},
    Category.JEUGDCRIMINALITEIT: {
        "offence_type": "winkeldiefstal",
        "school_attendance": "verzuim",
        "first_offence": True,
    },
    Category.ZORGMIJDING: {"care_refused": ["huisarts"], "living_conditions": "vervuild"},
}
SUBJECTS: tuple[dict[str, Any], ...] = (
    {"kind": "person", "bsn": "999990019", "name": "J. Jansen", "birth_date": "1980-01-01"},
    {"kind": "address", "postcode": "1012AB", "house_number": 1, "house_letter": "a", "addition": "2"},
    {"kind": "organisation", "kvk_number": "12345678", "trade_name": "Jansen Klussen"},
)


def _available(category: Category, subject: dict[str, Any]) -> dict[str, Any]:
    """available_fields of a signal of `category` about `subject`, as consent opens it."""
    submission = signal_adapter.validate_python(
        {
            "municipality": "gm0363",
            "category": category.value,
            "severity": "hoog",
            "purpose": "zorg_en_veiligheid_casusoverleg",
            "occurred_at": "2026-11-20T21:15:00+01:00",
            "subject": subject,
            "summary": "Melding.",
            "attributes": FULL_ATTRIBUTES[category],
        }
    )
    accepted = SignalAccepted(
        signal_id=submission.signal_id,
        municipality=submission.municipality,
        category=submission.category,
        severity=submission.severity,
        occurred_at=submission.occurred_at,
        purpose=submission.purpose,
        legal_basis=None,
        retention_days=None,
        classification=submission.classification,
        subject_kind=submission.subject.kind,
        subject_pseudonym="0" * 32,
        publisher=submission.municipality,
        authenticated_by="api-token",
        accepted_at=submission.occurred_at,
        personal=EncryptedPayload(subject="0" * 32, ciphertext="c2VhbGVk"),
    )
    return available_fields(accepted, PersonalPayload.of(submission))


def test_the_example_signals_fill_every_attribute_of_their_category() -> None:
    for category, model in attribute_models().items():
        assert set(FULL_ATTRIBUTES[category]) == set(model.model_fields), category


def test_every_deliverable_name_maps_to_the_data_of_the_model_fields_it_is_made_of() -> None:
    sources = deliverable_sources()
    seen: set[str] = set()
    for category in Category:
        for subject in SUBJECTS:
            available = _available(category, subject)
            # every name consent can deliver is a classified deliverable field
            assert set(available) <= DELIVERABLE_FIELDS
            present = {name for name, value in available.items() if value is not None}
            seen |= present
            for name in present - {
                "municipality",
                "category",
                "severity",
                "occurred_at",
                "purpose",
                "summary",
            }:
                value = available[name]
                models = {model for model, _ in sources[name]}
                if name == "attributes":
                    assert set(value) == set(attribute_models()[category].model_fields)
                elif name == "subject.address":
                    assert set(value) == {field for _, field in sources[name]}
                elif name.startswith("attributes."):
                    assert attribute_models()[category] in models
                    assert value == available["attributes"][name.removeprefix("attributes.")]
                else:  # subject.<field>: that field of this kind of subject
                    assert any(model.model_fields["kind"].default == subject["kind"] for model in models), (
                        name
                    )
    # and every deliverable name is filled by some signal
    assert seen == DELIVERABLE_FIELDS
