"""requirements.lock and requirements-dev.lock are current with pyproject.toml (`make lock`).

Read offline: every dependency that pyproject.toml names is pinned (`==`, with hashes) in the
lock that installs it, at a version its specifier allows; the runtime lock (the image's)
carries no development tool; the two locks agree wherever they overlap.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")


def _pins(lock: Path) -> dict[str, Version]:
    """name -> pinned version; fails on a requirement that is not `==` or has no hash."""
    text = lock.read_text(encoding="utf-8")
    pins: dict[str, Version] = {}
    for entry in re.split(r"\n(?=\S)", text.replace("\\\n", " ")):
        line = entry.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"{lock.name}: not pinned with ==: {line[:80]}"
        assert "--hash=sha256:" in line, f"{lock.name}: {match['name']} has no hash"
        pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def _requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies = project["dependencies"]
    optional = project["optional-dependencies"]
    assert isinstance(dependencies, list) and isinstance(optional, dict)
    found = [Requirement(text) for text in dependencies]
    for extra in extras:
        found += [Requirement(text) for text in optional[extra]]
    return found


RUNTIME = ("postgres",)
DEVELOPMENT = ("postgres", "dev")


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, RUNTIME), (DEV_LOCK, DEVELOPMENT)])
def test_every_dependency_of_pyproject_is_pinned_in_its_lock_where_its_specifier_allows(
    lock: Path, extras: tuple[str, ...]
) -> None:
    pins = _pins(lock)
    for requirement in _requirements(*extras):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock.name} lacks {requirement.name}: make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]}, pyproject.toml wants {requirement}: make lock"
        )


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, RUNTIME), (DEV_LOCK, DEVELOPMENT)])
def test_what_an_extra_of_a_dependency_brings_is_in_the_lock(lock: Path, extras: tuple[str, ...]) -> None:
    """`psycopg[binary]` needs psycopg-binary: read from the installed release's metadata (the
    one the dev lock installed), markers evaluated for this interpreter."""
    pins = _pins(lock)
    for requirement in _requirements(*extras):
        for extra in requirement.extras:
            try:
                declared = metadata.requires(requirement.name) or []
            except metadata.PackageNotFoundError:
                pytest.fail(f"{requirement.name} is not installed: make install")
            for text in declared:
                brought = Requirement(text)
                if brought.marker is not None and brought.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(brought.name) in pins, (
                        f"{lock.name} lacks {brought.name} ({requirement.name}[{extra}]): make lock"
                    )


def test_the_runtime_lock_carries_no_development_tool() -> None:
    runtime = set(_pins(RUNTIME_LOCK))
    for tool in ("pytest", "ruff", "mypy", "hypothesis", "playwright", "uv", "check-jsonschema"):
        assert tool not in runtime, f"{tool} would end up in the image"


def test_the_dev_lock_keeps_the_runtime_locks_pins() -> None:
    """What the tests run against is what the image runs."""
    runtime, development = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    assert set(runtime) <= set(development)
    assert {name: development[name] for name in runtime} == runtime


def test_both_locks_say_how_they_are_made() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^lock:", makefile, re.MULTILINE), "make lock"
    assert "--require-hashes -r requirements-dev.lock" in makefile, "make install installs the dev lock"
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        assert "#    make lock" in lock.read_text(encoding="utf-8").splitlines()[1], lock.name
