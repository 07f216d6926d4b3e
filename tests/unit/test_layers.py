"""The layer contracts in pyproject.toml ([tool.importlinter]) fail when a forbidden import is
added: each case adds one import to a copy of the tree and expects exactly its contract broken.
(`make lint` runs the same contracts over the tree itself.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# (file, the import added to it, the contract it breaks)
FORBIDDEN = [
    ("shared/contracts/envelope.py", "import shared.plumbing.tracing", "contracts-pure"),
    ("shared/contracts/topics.py", "import fastapi", "contracts-pure"),
    ("shared/plumbing/kafka.py", "import services.audit", "plumbing-below-services"),
    ("shared/kafka_records.py", "import structlog", "kafka-records-alone"),
    ("shared/client_credentials.py", "import shared.plumbing.settings", "client-credentials-alone"),
    ("partner/client.py", "import shared.plumbing.settings", "sdks-on-contracts"),
    ("publisher/intake.py", "import sqlalchemy", "sdks-on-contracts"),
    ("services/signals/intake.py", "import services.consent.decision", "services-independent"),
    ("services/consent/enforcement.py", "import publisher", "services-not-tools"),
    ("cli/common.py", "import devstack.keys", "devstack-development-only"),
    ("deploy/tool_cache.py", "import services.signals.settings", "deploy-from-contracts"),
    ("cli/operations.py", "import services.signals.keystore", "cli-through-public-modules"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """lint-imports' report on a copy of the project's packages with every FORBIDDEN import added."""
    root = tmp_path_factory.mktemp("tree")
    for package in CONFIG["root_packages"]:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    for file, line, _ in FORBIDDEN:
        with (root / file).open("a", encoding="utf-8") as module:
            module.write(f"\n{line}  # added by the test\n")
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout


def _name(contract_id: str) -> str:
    (contract,) = [c for c in CONFIG["contracts"] if c["id"] == contract_id]
    return str(contract["name"])


def _section(report: str, contract_id: str) -> str:
    """What the report says under the contract's heading among the broken contracts."""
    broken = report.partition("Broken contracts")[2]
    headings = [_name(c["id"]) for c in CONFIG["contracts"]]
    pattern = "|".join(re.escape(heading) for heading in headings)
    parts = re.split(rf"^({pattern})\n-+\n", broken, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    return sections.get(_name(contract_id), "")


def test_every_contract_is_exercised_by_a_forbidden_import() -> None:
    assert {case[2] for case in FORBIDDEN} == {contract["id"] for contract in CONFIG["contracts"]}


CASE_IDS = [f"{contract}:{line}" for _, line, contract in FORBIDDEN]


@pytest.mark.parametrize(("file", "line", "contract_id"), FORBIDDEN, ids=CASE_IDS)
def test_a_forbidden_import_breaks_its_contract(report: str, file: str, line: str, contract_id: str) -> None:
    importer = file.removesuffix(".py").replace("/", ".")
    imported = line.removeprefix("import ")
    assert f"{importer} -> {imported}" in _section(report, contract_id), report
