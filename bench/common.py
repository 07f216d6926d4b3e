"""What both benchmarks share: the signals they send, statistics, and how results are shown."""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from shared.plumbing.logging import configure_logging
from shared.plumbing.settings import LogFormat

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"

PERMITTED_CATEGORY = "huiselijk_geweld"  # config/agreements: delivered to veilig-thuis-amsterdam
DENIED_CATEGORY = "radicalisering"  # no agreement covers it: every partner is denied
PERMITTED_PARTNER = "veilig-thuis-amsterdam"


def iter_bsns() -> Iterator[str]:
    """Distinct valid BSNs, in order from 100000000 (about one number in eleven passes)."""
    weights = (9, 8, 7, 6, 5, 4, 3, 2)
    for candidate in range(100_000_000, 1_000_000_000):
        digits = f"{candidate:09d}"
        total = sum(int(d) * w for d, w in zip(digits[:8], weights, strict=True)) - int(digits[8])
        if total > 0 and total % 11 == 0:
            yield digits


def bsns(count: int) -> list[str]:
    """`count` distinct valid BSNs."""
    return list(itertools.islice(iter_bsns(), count))


def signal(category: str = PERMITTED_CATEGORY, bsn_: str = "999990019", **overrides: Any) -> dict[str, Any]:
    """A valid signal of gm0363 (the e2e tests' domestic-violence signal) with a fresh id."""
    attributes: dict[str, Any] = (
        {"children_present": True, "children_count": 2}
        if category == PERMITTED_CATEGORY
        else {"online_activity": True}
    )
    document: dict[str, Any] = {
        "signal_id": str(uuid.uuid4()),
        "municipality": "gm0363",
        "category": category,
        "severity": "hoog",
        "purpose": "veiligheid_huiselijk_geweld",
        "occurred_at": "2026-11-20T21:15:00+01:00",
        "subject": {"kind": "person", "bsn": bsn_, "name": "J. Jansen"},
        "summary": "Buren melden geschreeuw en slaan in de woning.",
        "attributes": attributes,
    }
    document.update(overrides)
    return document


def mixed_signals(count: int, denied_every: int, subjects: Sequence[str]) -> list[dict[str, Any]]:
    """`count` signals; every `denied_every`-th is radicalisering (denied), the rest are
    huiselijk_geweld (delivered). Subjects cycle through `subjects`."""
    return [
        signal(
            DENIED_CATEGORY if denied_every and i % denied_every == 0 else PERMITTED_CATEGORY,
            subjects[i % len(subjects)],
        )
        for i in range(count)
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """min, p50, p95, p99, max and mean of `values`."""
    return {
        "n": float(len(values)),
        "min": min(values) if values else math.nan,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": statistics.fmean(values) if values else math.nan,
    }


def environment() -> dict[str, Any]:
    """Where and when a benchmark ran: enough to tell two runs' numbers apart."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        # the machine's load when the results were written: other work on the cores shows here
        "load_average_1_5_15_min": os.getloadavg(),
    }


def load_note() -> str:
    """The machine's load now: numbers taken while other work shared the cores are worse."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def make_console() -> Console:
    """A console that does not squeeze the tables when its output is a file or a pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=130)


def print_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    left: int = 1,
) -> None:
    """A table whose first `left` columns are text (left-justified), the rest figures."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_results(console: Console, path: Path | None, benchmark: str, results: dict[str, Any]) -> None:
    """A benchmark's --json file, when asked for: its name, this machine and run, its results."""
    if path is None:
        return
    write_json(path, {"benchmark": benchmark, "environment": environment(), **results})
    console.print(f"wrote {path}")


def number(value: float | None, form: str) -> str:
    """`value` in `form`, or "-" when it was not measured."""
    return form.format(value) if value is not None else "-"


def seconds(value: float | None) -> str:
    return number(value, "{:.2f} s")


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The services' JSON logging, rendered as in production but written to /dev/null."""
    with open(os.devnull, "w") as sink:
        configure_logging("bench", LogFormat.JSON)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sink))
        yield
