"""The cache folder the deploy checks build or fetch their tools into (.cache/...), shared by
parallel test sessions, and the machine's Go that builds some of them."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

GO_FALLBACK: Final = Path("/usr/local/go/bin/go")
"""Where Go is installed on this project's machines and CI's when it is not on PATH."""


class SetupError(RuntimeError):
    """A tool or schema could not be built, fetched or run (no Go, no Maven, no network on a
    first run): the check that needed it did not happen."""


def find_go() -> str | None:
    """The machine's Go: on PATH, else at GO_FALLBACK; None when there is none."""
    return shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.is_file() else None)


def require_go(purpose: str) -> str:
    """The machine's Go; SetupError, naming `purpose` ("to build kustomize"), when there is none."""
    found = find_go()
    if found is None:
        raise SetupError(f"Go is needed {purpose} (looked on PATH and at {GO_FALLBACK})")
    return found


def go_caches() -> Path:
    """The machine's module and build caches for these builds, kept between clones as Maven's
    ~/.m2 keeps the broker's jars: a fresh clone builds kustomize and promcheck from them in
    seconds instead of compiling every package again (half a minute each on two cores). Go's
    caches are safe to share between concurrent builds."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "safety-chain" / "go"


@contextlib.contextmanager
def go_build_env(cache_dir: Path, **variables: str) -> Iterator[dict[str, str]]:
    """The environment of one `go` build under `cache_dir`: a GOPATH of its own, removed
    afterwards (the binary is what is kept), the shared caches of `go_caches`, the machine's Go
    only, no cgo. `variables` add to or replace these (GOBIN, GOFLAGS)."""
    caches = go_caches()
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="go-") as work:
        yield {
            **os.environ,
            "GOPATH": f"{work}/path",
            "GOMODCACHE": str(caches / "mod"),
            "GOCACHE": str(caches / "build"),
            "GOFLAGS": "-modcacherw",  # a module cache whose files can be removed like any other
            "GOTOOLCHAIN": "local",  # the machine's Go: never fetch another toolchain
            "CGO_ENABLED": "0",
            **variables,
        }


@contextlib.contextmanager
def locked(cache_dir: Path) -> Iterator[None]:
    """One process at a time fetches or builds into `cache_dir`."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
