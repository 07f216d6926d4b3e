"""Files generated from a source of truth and committed: written by one command, checked by CI.

A generator says only what its files must hold: `render(root)` maps each path (relative to the
root folder) to its exact content. `Generator.main` is its command line:

    python -m <generator>           # write every file that is missing or differs; remove left-overs
    python -m <generator> --check   # name every file that is missing, differs or is left over; exit 1

A left-over is a file matching one of the generator's `owned` patterns that `render` no longer
produces (a schema of a removed event, a copy of a deleted agreement). Used by
shared/plumbing/contract_docs.py, deploy/k8s/generate.py and deploy/monitoring/generate.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Content = str | bytes
"""A file's exact content; text is written as UTF-8."""

Files = Mapping[Path, Content]
"""Path relative to the root folder -> exact content."""


def _bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def left_over(root: Path, files: Files, owned: Iterable[str]) -> list[Path]:
    """Files under `root` matching an `owned` glob pattern that are not in `files`."""
    found = {path.relative_to(root) for pattern in owned for path in root.glob(pattern) if path.is_file()}
    return sorted(found - set(files))


def stale_files(root: Path, files: Files, owned: Iterable[str] = ()) -> list[Path]:
    """The paths (relative to `root`) that are missing, differ from `files`, or are left over."""
    differ = [
        path
        for path, content in files.items()
        if not (root / path).is_file() or (root / path).read_bytes() != _bytes(content)
    ]
    return sorted({*differ, *left_over(root, files, owned)})


def write_files(root: Path, files: Files, owned: Iterable[str] = ()) -> list[Path]:
    """Remove the left-overs and write every file that is missing or differs; returns the paths
    (relative to `root`) changed. A file already current is not touched."""
    removed = left_over(root, files, owned)
    for path in removed:
        (root / path).unlink()
    written = []
    for path, content in files.items():
        target, data = root / path, _bytes(content)
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(path)
    return sorted([*removed, *written])


def _shown(path: Path) -> Path:
    """`path` relative to the working directory when it is below it (the repository root, as
    `make docs` runs), else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


@dataclass(frozen=True)
class Generator:
    """One generator's files and its command line."""

    command: str
    """How a person runs it (`python -m deploy.k8s.generate`): named when a check fails."""
    description: str
    render: Callable[[Path], Files]
    """Given the root folder: every generated file, by path relative to it, with its content."""
    root: Path
    """The default root folder; `root_option` picks another (a test's copy of the sources)."""
    root_option: str = "--root"
    owned: tuple[str, ...] = ()
    """Glob patterns (relative to the root) of files only this generator writes: one that
    `render` no longer produces is left over, named by the check and removed by a write."""
    errors: tuple[type[Exception], ...] = ()
    """What `render` raises when the sources cannot be generated from: reported, exit 2."""

    def stale(self, root: Path | None = None) -> list[Path]:
        """Paths (relative to the root) that are missing, differ, or are left over."""
        root = self.root if root is None else root
        return stale_files(root, self.render(root), self.owned)

    def write(self, root: Path | None = None) -> list[Path]:
        """Bring every file up to date; returns the paths (relative to the root) changed."""
        root = self.root if root is None else root
        return write_files(root, self.render(root), self.owned)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """0 when the files are (now) current, 1 when --check found any that is not, 2 when the
        sources cannot be generated from."""
        parser = argparse.ArgumentParser(prog=self.command, description=self.description)
        parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is not current")
        parser.add_argument(
            self.root_option, dest="root", type=Path, default=self.root, help=f"default: {self.root}"
        )
        args = parser.parse_args(argv)
        root: Path = args.root
        try:
            files = self.render(root)
        except self.errors as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if not args.check:
            for path in write_files(root, files, self.owned):
                print(f"{'wrote' if (root / path).exists() else 'removed'} {_shown(root / path)}")
            return 0
        outdated = stale_files(root, files, self.owned)
        for path in outdated:
            why = "left over" if path not in files else "stale" if (root / path).is_file() else "missing"
            print(f"{why}: {_shown(root / path)}", file=sys.stderr)
        if outdated:
            print(f"regenerate with `{self.command}` and commit the result", file=sys.stderr)
            return 1
        return 0
