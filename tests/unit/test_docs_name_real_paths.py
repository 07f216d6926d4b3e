"""The documents name the tree as it is: README's "Where to look" has one row per folder of the
code, and every path the README, CONTRIBUTING and docs/ name in backticks exists (a path with a
`<placeholder>` names a pattern, not a file, and is left out)."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    "README.md",
    "CONTRIBUTING.md",
    *sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "docs").rglob("*.md")),
]


def _tracked() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [path for path in listed.stdout.split() if (REPO_ROOT / path).exists()]


def folders_of_the_code() -> set[str]:
    """Every Python package outside tests/, and every other top-level folder (not hidden)."""
    tracked = _tracked()
    packages = {str(Path(path).parent) for path in tracked if path.endswith("/__init__.py")}
    tops = {path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")}
    return {p for p in packages if not p.startswith("tests")} | tops


def where_to_look_rows(readme: str) -> list[str]:
    """The first column of README's "Where to look" table, each a folder."""
    lines = readme.partition("\nWhere to look")[2].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = [line for line in itertools.takewhile(lambda line: line.startswith("|"), lines[start:])]
    rows = [line.split("|")[1].strip() for line in table[2:]]  # after the heading and its rule
    assert all(re.fullmatch(r"`[\w/.-]+/`", row) for row in rows), rows
    return [row.strip("`/") for row in rows]


def test_where_to_look_has_one_row_per_folder() -> None:
    rows = where_to_look_rows((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(rows) == len(set(rows)), "a folder has two rows"
    assert set(rows) == folders_of_the_code()


def test_every_path_the_documents_name_exists() -> None:
    tops = {path.split("/")[0] for path in _tracked()}
    dead = []
    for document in DOCUMENTS:
        text = (REPO_ROOT / document).read_text(encoding="utf-8")
        for path in re.findall(r"`([\w./-]+/[\w./-]*)`", text):
            if path.split("/")[0] in tops and not (REPO_ROOT / path).exists():
                dead.append(f"{document}: {path}")
    assert not dead
