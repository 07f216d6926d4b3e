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
    assert ids == {"huiselijk-geweld-amsterdam", "ondermijning-amsterdam", "zvh-casusoverleg-amsterdam"}


def test_the_zvh_case_conference_gives_each_of_its_four_partners_a_different_set_of_fields(
    project_config_dir: Path,
) -> None:
    (conference,) = [
        a for a in load_agreements(project_config_dir / "agreements") if a.id == "zvh-casusoverleg-amsterdam"
    ]
    fields = {recipient.partner: frozenset(recipient.fields) for recipient in conference.recipients}
    assert set(fields) == {
        "politie-eenheid-amsterdam",
        "om-arrondissement-amsterdam",
        "zvh-amsterdam",
        "veilig-thuis-amsterdam",
    }
    assert len(set(fields.values())) == len(fields)
    # identifying, yet no partner gets the whole identity, nor attributes wholesale
    assert conference.identifying
    whole_identity = {"subject.bsn", "subject.name", "subject.birth_date"}
    assert all(not whole_identity <= shared and "attributes" not in shared for shared in fields.values())


def test_no_two_example_agreements_cover_the_same_partner_category_and_purpose(
    project_config_dir: Path,
) -> None:
    # Otherwise the fewest-fields rule would silently pick between them.
    covered = [
        (recipient.partner, category, purpose)
        for agreement in load_agreements(project_config_dir / "agreements")
        for recipient in agreement.recipients
        for category in agreement.categories
        for purpose in agreement.purposes
    ]
    assert len(covered) == len(set(covered))


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
