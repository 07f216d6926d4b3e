"""The cache folder the deploy checks build or fetch their tools into (.cache/...), shared by
parallel test sessions."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


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
