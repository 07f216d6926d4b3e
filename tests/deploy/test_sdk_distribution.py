"""The SDKs install as their own distribution (sdk/pyproject.toml) and work with only the
dependencies it declares: no FastAPI, SQLAlchemy, OpenTelemetry or structlog. The wheel is built
offline, unpacked, and run by an interpreter whose path holds the wheel and the declared
dependencies (resolved from what is installed here) and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "starlette", "sqlalchemy", "opentelemetry", "structlog", "faststream", "uvicorn")

SCRIPT = """
import json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
import partner, publisher
from shared.contracts.crypto.signing import verify_record
from shared.contracts.envelope import Envelope

signing, sealing = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
value, headers = publisher.intake_record(
    b'{"signal_id": "x"}', "urn:nld:oin:00000001234567890000:systeem:test", signing, sealing.public_key()
)
verify_record([signing.public_key()], value, headers)
publisher.ClientCredentials.with_private_key("https://idp.example", "c", signing, scope="signals")
print(json.dumps({
    "type": Envelope.from_headers(headers).type,
    "exports": sorted(set(partner.__all__) | set(publisher.__all__)),
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
}))
"""


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions `requirements` need, transitively (markers for this Python)."""
    found: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        distribution = metadata.distribution(requirement.name)
        name = distribution.metadata["Name"].lower()
        if name in found:
            continue
        found.add(name)
        for extra in requirement.extras:
            pending += [
                Requirement(text)
                for text in distribution.requires or []
                if Requirement(text).marker and Requirement(text).marker.evaluate({"extra": extra})  # type: ignore[union-attr]
            ]
        pending += [Requirement(text) for text in distribution.requires or [] if "extra ==" not in text]
    return found


def _link_distribution(name: str, target: Path) -> None:
    """Symlink the top-level modules and packages of an installed distribution into `target`."""
    distribution = metadata.distribution(name)
    for file in distribution.files or []:
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
            continue
        source = Path(str(distribution.locate_file(top)))
        if source.exists() and not (target / top).exists():
            (target / top).symlink_to(source)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "--quiet",
            "-w",
            out,
            "sdk/",
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=300,
    )
    (built,) = out.glob("safety_chain_sdk-*.whl")
    return built


def test_the_wheel_holds_the_sdks_and_the_contracts_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"partner", "publisher", "shared"}
    shared = {"/".join(name.split("/")[:2]) for name in names if name.startswith("shared/")}
    assert shared == {
        "shared/__init__.py",
        "shared/client_credentials.py",
        "shared/contracts",
        "shared/kafka_records.py",
    }
    assert "shared/contracts/intake.py" in names and "partner/client.py" in names
    assert not any("__pycache__" in name for name in names)


def test_the_sdks_run_with_only_the_dependencies_they_declare(wheel: Path, tmp_path: Path) -> None:
    unpacked, dependencies = tmp_path / "wheel", tmp_path / "dependencies"
    zipfile.ZipFile(wheel).extractall(unpacked)
    (info,) = unpacked.glob("*.dist-info")
    declared = (
        Parser().parsestr((info / "METADATA").read_text(encoding="utf-8")).get_all("Requires-Dist") or []
    )
    closure = _closure(declared)
    assert not {name for name in closure if name.startswith(HEAVY)}, sorted(closure)
    dependencies.mkdir()
    for name in closure:
        _link_distribution(name, dependencies)
    result = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT],
        env={"PYTHONPATH": f"{unpacked}:{dependencies}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["type"] == "nl.safetychain.signal.submitted.v1"
    assert {"PartnerClient", "IntakePublisher", "intake_record", "open_delivery"} <= set(answer["exports"])
    assert {"HttpPublisher", "ClientCredentials"} <= set(answer["exports"])
    assert not set(answer["modules"]) & set(HEAVY), answer["modules"]
    # and the interpreter could not have found them: the path holds nothing else
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import fastapi"],
        env={"PYTHONPATH": f"{unpacked}:{dependencies}"},
        capture_output=True,
        timeout=60,
    )
    assert probe.returncode != 0
