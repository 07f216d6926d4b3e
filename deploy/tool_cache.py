"""The cache folder the deploy checks build or fetch their tools into (.cache/...), shared by
parallel test sessions."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

GO_FALLBACK: Final = Path("/usr/local/go/bin/go")
"""Where Go is installed on this project's machines and CI's when it is not on PATH."""


def find_go() -> str | None:
    """The machine's Go: on PATH, else at GO_FALLBACK; None when there is none."""
    return shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.is_file() else None)


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
