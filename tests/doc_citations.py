"""Checks shared by the tests that hold a document to the tests it cites (the threat model,
the compliance map): a citation is `tests/<file>.py::test_<name>`, optionally with a
parametrised id in brackets."""

from __future__ import annotations

import re
from pathlib import Path

CITATION = re.compile(r"(?P<file>tests/[\w/]+\.py)::(?P<test>test_\w+)(?:\[[^\]]*\])?")


def citations(text: str) -> list[tuple[str, str]]:
    """Every `tests/....py::test_name` in the text (a parametrised id in brackets dropped)."""
    return sorted({(match["file"], match["test"]) for match in CITATION.finditer(text)})


def missing(cited: list[tuple[str, str]], root: Path) -> list[str]:
    """The citations whose file does not exist or does not define that test function."""
    problems = []
    for file, test in cited:
        path = root / file
        if not path.is_file():
            problems.append(f"{file}::{test}: no such file")
            continue
        source = path.read_text(encoding="utf-8")
        if not re.search(rf"^\s*(?:async\s+)?def {re.escape(test)}\(", source, re.MULTILINE):
            problems.append(f"{file}::{test}: no such test")
    return problems
