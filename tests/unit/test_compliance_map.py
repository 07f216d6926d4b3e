"""docs/compliance.md maps each duty (AVG, BIO, VWL, LDV) to the control that meets it and the
test that proves it. This keeps it honest: every file, function and test it cites must exist,
every row marked met must cite a test, and every row that is not met must be listed again, with
what would close it, under "Not met or partly met"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.doc_citations import citations, missing

ROOT = Path(__file__).resolve().parents[2]
COMPLIANCE_MAP = ROOT / "docs" / "compliance.md"

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FILE_SUFFIXES = (".py", ".md", ".yaml", ".html")
CODE_CITATION = re.compile(r"^(?P<file>[\w./-]+\.py)::(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
HEADER = ["Duty", "Control", "Proven by", "Status"]
STATUSES = ("met", "partly", "not met")
AREAS = {
    "AVG": ("AVG (GDPR)", 13),
    "BIO": ("BIO logging controls", 4),
    "VWL": ("VNG Verwerkingenlogging", 10),
    "LDV": ("Logboek Dataverwerkingen", 10),
}
GAPS_HEADING = "Not met or partly met"


@dataclass(frozen=True)
class Row:
    section: str
    duty: str
    control: str
    proven_by: str
    status: str

    @property
    def key(self) -> str:
        """The duty's name: the bold text that opens its cell (e.g. `AVG art. 15`)."""
        return bold_key(self.duty)


def bold_key(text: str) -> str:
    match = re.match(r"\s*\*\*(.+?)\*\*", text)
    return match.group(1).strip() if match else ""


def code_spans(text: str) -> list[str]:
    return CODE_SPAN.findall(text)


def cited_files(text: str) -> set[str]:
    """Every backticked span that names a file: it holds a `/` and, without any `::name`,
    ends in .py, .md, .yaml or .html."""
    files = set()
    for span in code_spans(text):
        path = span.split("::", 1)[0]
        if "/" in path and path.endswith(FILE_SUFFIXES):
            files.add(path)
    return files


def missing_files(files: set[str], root: Path) -> list[str]:
    """The cited files that are not in the repository (a `*` must match at least one)."""
    problems = []
    for file in sorted(files):
        found = any(root.glob(file)) if "*" in file else (root / file).is_file()
        if not found:
            problems.append(f"{file}: no such file")
    return problems


def cited_code(text: str) -> list[tuple[str, str]]:
    """Every backticked `path.py::Name` or `path.py::Class.member` outside tests/."""
    found = set()
    for span in code_spans(text):
        match = CODE_CITATION.match(span)
        if match and not match["file"].startswith("tests/"):
            found.add((match["file"], match["name"]))
    return sorted(found)


def _defines(source: str, name: str) -> bool:
    """`def name`, `class name`, or `name =` / `name:` at the start of a line (any indent)."""
    escaped = re.escape(name)
    pattern = rf"^\s*(?:(?:async\s+)?def\s+{escaped}\s*\(|class\s+{escaped}\b|{escaped}\s*[:=])"
    return re.search(pattern, source, re.MULTILINE) is not None


def missing_code(cited: list[tuple[str, str]], root: Path) -> list[str]:
    """The cited functions, classes and names that their file does not define."""
    problems = []
    for file, name in cited:
        path = root / file
        if not path.is_file():
            problems.append(f"{file}::{name}: no such file")
            continue
        source = path.read_text(encoding="utf-8")
        absent = [part for part in name.split(".") if not _defines(source, part)]
        if absent:
            problems.append(f"{file}::{name}: {', '.join(absent)} not defined there")
    return problems


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def duty_rows(text: str) -> list[Row]:
    """The rows of every table headed Duty | Control | Proven by | Status, with the `## `
    heading they stand under."""
    rows: list[Row] = []
    section = ""
    in_table = False
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells == HEADER:
            in_table = True
            continue
        if not in_table or all(set(cell) <= set("-: ") for cell in cells):
            continue
        assert len(cells) == len(HEADER), f"a row of {len(cells)} cells under {section!r}: {line[:80]}"
        rows.append(Row(section, *cells))
    return rows


def gap_keys(text: str) -> list[str]:
    """The duties listed under the `## Not met or partly met` heading (`- **duty**: ...`)."""
    keys: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == GAPS_HEADING
            continue
        if inside and line.startswith("- "):
            key = bold_key(line[2:])
            if key:
                keys.append(key)
    return keys


def row_problems(rows: list[Row], gaps: list[str]) -> list[str]:
    """A duty without a name, a status that is none of the three, a met row without a test, a
    row not met that the gaps section leaves out, and a gap that names no such row."""
    problems = []
    for row in rows:
        if not row.key:
            problems.append(f"{row.duty[:40]!r}: the duty opens with no **name**")
        if row.status not in STATUSES:
            problems.append(f"{row.key}: status {row.status!r} is none of {STATUSES}")
        if row.status == "met" and not citations(row.proven_by):
            problems.append(f"{row.key}: marked met but cites no test")
        if row.status != "met" and row.key not in gaps:
            problems.append(f"{row.key}: {row.status} but not under {GAPS_HEADING!r}")
    not_met = {row.key for row in rows if row.status != "met"}
    problems += [
        f"{gap}: listed under {GAPS_HEADING!r} but no row is partly or not met"
        for gap in gaps
        if gap not in not_met
    ]
    return problems


# --- the document -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text() -> str:
    return COMPLIANCE_MAP.read_text(encoding="utf-8")


def test_every_cited_file_exists(text: str) -> None:
    files = cited_files(text)
    assert len(files) >= 40, "the map should name the modules and tests that meet each duty"
    assert missing_files(files, ROOT) == []


def test_every_cited_test_exists(text: str) -> None:
    cited = citations(text)
    assert len(cited) >= 60, "the map should cite the tests that prove its controls"
    assert missing(cited, ROOT) == []


def test_every_cited_function_and_class_exists(text: str) -> None:
    cited = cited_code(text)
    assert len(cited) >= 40
    assert missing_code(cited, ROOT) == []


def test_each_area_has_its_table_of_duties(text: str) -> None:
    rows = duty_rows(text)
    for prefix, (heading, at_least) in AREAS.items():
        in_area = [row for row in rows if row.section.startswith(heading)]
        assert len(in_area) >= at_least, f"{heading}: {len(in_area)} rows"
        assert all(row.key.startswith(prefix + " ") for row in in_area), heading
    headings = tuple(heading for heading, _ in AREAS.values())
    assert all(row.section.startswith(headings) for row in rows), "a duty table outside the four areas"
    keys = [row.key for row in rows]
    assert len(keys) == len(set(keys)), "each duty has one row"


def test_the_duties_of_issue_11_each_have_a_row(text: str) -> None:
    keys = {row.key for row in duty_rows(text)}
    required = {
        *(f"AVG art. {article}" for article in ("5(1)(b)", "5(1)(c)", "6", "15", "17", "19", "21", "30")),
        *(f"AVG art. {article}" for article in ("5(1)(e)", "5(1)(f)", "23", "25", "32")),
        *(f"BIO 12.4.{control}" for control in range(1, 5)),
        "VWL `actieId`",
        "VWL `vertrouwelijkheid`",
        "VWL `bewaartermijn`",
        "VWL `gebruiker`",
        "VWL `verwerkteObjecten`",
        "LDV `trace_id`",
        "LDV `span_id`",
        "LDV `parent_span_id`",
        "LDV `dpl.core.processing_activity_id`",
        "LDV `dpl.core.data_subject_id`, `dpl.core.data_subject_id_type`",
        "LDV `dpl.core.foreign_operation.processor`",
    }
    assert required - keys == set()


def test_every_met_row_cites_a_test_and_every_gap_is_listed(text: str) -> None:
    rows = duty_rows(text)
    assert any(row.status == "met" for row in rows)
    assert row_problems(rows, gap_keys(text)) == []


def test_the_map_says_what_it_is_and_where_the_console_shows_it(text: str) -> None:
    opening = " ".join(text[:3000].split())
    assert text.startswith("# Compliance map\n")
    assert "/console/compliance" in opening and "tests/unit/test_compliance_map.py" in opening


# --- the checks can fail -------------------------------------------------------------------


def test_a_misspelt_path_is_reported() -> None:
    text = (
        "see `services/consent/decison.py` and `services/consent/decision.py` and `config/agreements/*.yaml`"
    )
    assert cited_files(text) == {
        "services/consent/decison.py",
        "services/consent/decision.py",
        "config/agreements/*.yaml",
    }
    assert missing_files(cited_files(text), ROOT) == ["services/consent/decison.py: no such file"]
    assert missing_files({"config/agreements/*.yml"}, ROOT) == ["config/agreements/*.yml: no such file"]
    # an endpoint or a topic is no file
    assert cited_files("`POST /v1/audit/exports` `partner.<id>.signals.v1` `.local/keys/`") == set()


def test_a_renamed_test_or_function_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_defined(case):\n    test_only_called()\n", encoding="utf-8"
    )
    (tmp_path / "mod.py").write_text(
        "class Thing:\n    async def act(self):\n        helper()\nLIMIT: int = 3\n", encoding="utf-8"
    )
    text = (
        "`tests/test_x.py::test_defined[a-b]`, `tests/test_x.py::test_only_called`,"
        " `tests/nope.py::test_any`, `mod.py::Thing.act`, `mod.py::LIMIT`, `mod.py::helper`,"
        " `mod.py::Thing.gone`"
    )
    assert missing(citations(text), tmp_path) == [
        "tests/nope.py::test_any: no such file",
        "tests/test_x.py::test_only_called: no such test",
    ]
    assert missing_code(cited_code(text), tmp_path) == [
        "mod.py::Thing.gone: gone not defined there",
        "mod.py::helper: helper not defined there",
    ]


def test_a_met_row_without_a_test_or_an_unlisted_gap_is_reported() -> None:
    document = "\n".join(
        [
            "## AVG (GDPR)",
            "",
            "| Duty | Control | Proven by | Status |",
            "| --- | --- | --- | --- |",
            "| **AVG art. 6** basis | `decide` | `tests/unit/test_decision.py::test_decision_table` | met |",
            "| **AVG art. 15** access | the report | none | met |",
            "| **AVG art. 17** erasure | shredding | none | partly |",
            "| **AVG art. 21** objection | directives | none | not met |",
            "| **AVG art. 30** records | agreements | none | done |",
            "",
            "## Not met or partly met",
            "",
            "- **AVG art. 21**: tell earlier recipients.",
            "- **AVG art. 6**: nothing.",
        ]
    )
    rows = duty_rows(document)
    assert (rows[0].section, rows[0].key, rows[0].status) == ("AVG (GDPR)", "AVG art. 6", "met")
    assert len(rows) == 5  # the separator row is no duty
    assert gap_keys(document) == ["AVG art. 21", "AVG art. 6"]
    assert sorted(row_problems(rows, gap_keys(document))) == sorted(
        [
            "AVG art. 15: marked met but cites no test",
            "AVG art. 17: partly but not under 'Not met or partly met'",
            "AVG art. 30: status 'done' is none of ('met', 'partly', 'not met')",
            "AVG art. 30: done but not under 'Not met or partly met'",
            "AVG art. 6: listed under 'Not met or partly met' but no row is partly or not met",
        ]
    )
