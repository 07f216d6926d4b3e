"""Agreement files are checked with line-precise problems, and the examples are valid."""

from __future__ import annotations

from pathlib import Path

from services.consent.agreements import load_agreements, validate_folder, validate_text

GOOD = """\
id: hg
version: 1
title: Huiselijk geweld
legal_basis:
  law: Wmo 2015
  article: art. 5.2.6
providers: [gm0363]
categories: [huiselijk_geweld]
purposes: [veiligheid_huiselijk_geweld]
valid_from: 2026-01-01
retention_days: 365
identifying: true
recipients:
  - partner: veilig-thuis-amsterdam
    fields: [category, subject.name]
"""


def test_the_example_agreements_are_valid(project_config_dir: Path) -> None:
    ids = {agreement.id for agreement in load_agreements(project_config_dir / "agreements")}
    assert ids == {"huiselijk-geweld-amsterdam", "ondermijning-amsterdam"}


def test_a_good_file_has_no_problems() -> None:
    agreement, problems = validate_text(GOOD, "hg.yaml")
    assert problems == [] and agreement is not None and agreement.identifying


def test_a_wrong_field_is_reported_on_its_line() -> None:
    _, problems = validate_text(GOOD.replace("subject.name", "subject.shoe_size"), "hg.yaml")
    assert [(p.line, p.location) for p in problems] == [(15, "recipients.0.fields")]
    assert str(problems[0]).startswith("hg.yaml:15: recipients.0.fields:")


def test_an_unknown_category_is_reported_on_its_line() -> None:
    _, problems = validate_text(GOOD.replace("[huiselijk_geweld]", "[graffiti]"), "hg.yaml")
    assert [(p.line, p.location) for p in problems] == [(8, "categories.0")]


def test_a_missing_key_is_reported_on_the_mapping() -> None:
    _, problems = validate_text(GOOD.replace("retention_days: 365\n", ""), "hg.yaml")
    assert [(p.line, p.location) for p in problems] == [(1, "retention_days")]


def test_broken_yaml_is_reported_with_its_line() -> None:
    _, problems = validate_text(GOOD.replace("version: 1", "version: [1"), "hg.yaml")
    assert problems and problems[0].line >= 2 and "not YAML" in problems[0].message


def test_an_id_used_twice_in_a_folder_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    agreements, problems = validate_folder(tmp_path)
    assert len(agreements) == 1
    assert [p.message for p in problems] == [f"agreement id hg is also used in {tmp_path / 'a.yaml'}"]
