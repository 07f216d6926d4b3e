"""docs/threat-model.md cites the tests that prove its controls: every citation must name a test
that exists, so renaming or removing one breaks this test until the threat model is updated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.doc_citations import citations, missing

ROOT = Path(__file__).resolve().parents[2]
THREAT_MODEL = ROOT / "docs" / "threat-model.md"
STRIDE = "STRIDE"


def stride_rows(text: str) -> set[str]:
    """The STRIDE letters that head a threat row (`| S |`, `| S / E |`, ...)."""
    letters: set[str] = set()
    for cell in re.findall(r"^\|\s*([STRIDE](?:\s*/\s*[STRIDE])*)\s*\|", text, re.MULTILINE):
        letters.update(re.findall(r"[STRIDE]", cell))
    return letters


def test_every_cited_test_exists() -> None:
    cited = citations(THREAT_MODEL.read_text(encoding="utf-8"))
    assert len(cited) >= 30, "the threat model should cite the tests that prove its controls"
    assert missing(cited, ROOT) == []


def test_every_stride_letter_heads_at_least_one_threat() -> None:
    assert stride_rows(THREAT_MODEL.read_text(encoding="utf-8")) == set(STRIDE)


def test_the_threat_model_says_it_must_be_kept_current_with_issue_11() -> None:
    opening = " ".join(THREAT_MODEL.read_text(encoding="utf-8")[:1200].split()).lower()
    assert "keep this current" in opening and "as of issue 11" in opening


@pytest.mark.parametrize(
    ("cited", "problem"),
    [
        ("tests/unit/test_threat_model.py::test_renamed_away", "no such test"),
        ("tests/unit/no_such_file.py::test_anything", "no such file"),
    ],
)
def test_a_renamed_or_removed_test_is_reported(cited: str, problem: str) -> None:
    (found,) = missing(citations(f"proved by `{cited}`"), ROOT)
    assert problem in found


def test_parametrised_ids_are_stripped_and_only_definitions_count(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_defined(case):\n    test_only_called()\n", encoding="utf-8"
    )
    text = "`tests/test_x.py::test_defined[a-b]` and `tests/test_x.py::test_only_called`"
    assert citations(text) == [("tests/test_x.py", "test_defined"), ("tests/test_x.py", "test_only_called")]
    assert missing(citations(text), tmp_path) == ["tests/test_x.py::test_only_called: no such test"]
    assert stride_rows("| S / E | a threat |\n| T | another |\n") == {"S", "E", "T"}
