"""One and two replicas of each service side by side, from two bench.throughput results.

    python -m bench.replicas --one throughput.json --two throughput-2-replicas.json
        [--cores 4] [--json FILE]

Reads the two runs' --json files (`bench.throughput --replicas 1` and `--replicas 2`) and puts
their figures in one table: signals/s end to end (Kafka phase), the HTTP phases, CPU per signal
per service (replicas summed), the relay anchor of each run, the checks. Then what a node of
`--cores` cores would give from each run's measured CPU per signal, by this formula:

  - the processes of the chain (the services' replicas, the broker, PostgreSQL when the stores
    are there; not the benchmark, which is the load) spend c ms of CPU per signal in total, so
    N cores give at most N * 1000 / c signals/s;
  - a replica is one Python process and uses at most one core, so a service gives at most
    (replicas that consume) * 1000 / (its ms per signal, its replicas summed) signals/s; of
    audit only the leader consumes (the standbys serve queries), so audit counts once;
  - the estimate is the lower of those bounds: the busiest resource bounds it.

The same formula for the cores the runs had, beside what they measured, shows how far the
formula is from a real run (it assumes the cost per signal does not change with load, and no
waiting: every process busy all the time). Nothing is asserted: it is a reading of two runs.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import load_note, make_console, print_table, write_results
from bench.stack import SERVICES, is_replica

# processes whose CPU a node running the chain spends per signal (not the benchmark's own,
# nor the relay's hops, which run after the Kafka phase)
CHAIN = (*(f"services.{service}" for service in SERVICES), "kafka broker", "postgresql")
SAME = 0.05  # within 5 % of each other, one run each: no difference to speak of


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    if document.get("benchmark") != "throughput":
        raise SystemExit(f"{path}: not a bench.throughput result (benchmark: {document.get('benchmark')})")
    return document


def replicas(run: dict[str, Any]) -> int:
    """The replicas of each service in a run (results before --replicas existed ran one)."""
    return int(run.get("arguments", {}).get("replicas", 1))


def consuming(service: str, count: int) -> int:
    """How many of a service's replicas take a share of the signals: audit's standbys do not."""
    return 1 if service == "audit" else count


def per_signal_ms(run: dict[str, Any]) -> dict[str, float]:
    """CPU ms per signal of each process (a service's replicas summed), Kafka phase, first
    publish until the audit log holds all."""
    whole = run["kafka"]["cpu_whole_path"]
    return {name: used["ms_per_signal"] for name, used in whole.items() if not is_replica(name)}


def replica_ms(run: dict[str, Any], service: str) -> list[float]:
    whole = run["kafka"]["cpu_whole_path"]
    prefix = f"services.{service}/"
    return [used["ms_per_signal"] for name, used in sorted(whole.items()) if name.startswith(prefix)]


@dataclass(frozen=True)
class Estimate:
    cores: int
    chain_ms: float  # c: CPU ms per signal of every process of the chain
    by_cores: float  # cores * 1000 / c
    by_service: dict[str, float]  # consuming replicas * 1000 / the service's ms per signal

    @property
    def signals_per_s(self) -> float:
        return min([self.by_cores, *self.by_service.values()])

    @property
    def bound(self) -> str:
        limits = {f"{self.cores} cores": self.by_cores, **self.by_service}
        return min(limits, key=lambda name: limits[name])

    def as_dict(self) -> dict[str, Any]:
        return {
            "cores": self.cores,
            "chain_ms_per_signal": self.chain_ms,
            "by_cores": self.by_cores,
            "by_service": self.by_service,
            "signals_per_s": self.signals_per_s,
            "bound": self.bound,
        }


def estimate(run: dict[str, Any], cores: int) -> Estimate | None:
    """What `cores` cores would give by the formula (module docstring), from the run's CPU per
    signal; None when the run measured none."""
    ms = per_signal_ms(run)
    chain = sum(ms.get(name, 0.0) for name in CHAIN)
    if chain <= 0:
        return None
    count = replicas(run)
    by_service = {
        service: consuming(service, count) * 1000 / ms[f"services.{service}"]
        for service in SERVICES
        if ms.get(f"services.{service}", 0.0) > 0
    }
    return Estimate(cores, chain, cores * 1000 / chain, by_service)


# -- the figures of one run ----------------------------------------------------------------------


def _per_s(count: float, seconds: float | None) -> float | None:
    return count / seconds if seconds else None


def figures(run: dict[str, Any]) -> dict[str, float | None]:
    """The figures the table compares, by row key; None where the run has none."""
    kafka, audit = run["kafka"], run["kafka"]["audit"]
    out: dict[str, float | None] = {
        "kafka.accepted_per_s": _per_s(kafka["signals"], kafka["all_accepted_s"]),
        "kafka.delivered_per_s": _per_s(kafka["signals"], kafka["all_delivered_s"]),
        "kafka.logged_per_s": audit["signals_per_s"],
        "kafka.lag_s": audit["after_last_delivery_s"],
        "kafka.delivered_p50_ms": kafka["intake_to_delivered_ms"]["p50"],
        "kafka.delivered_p99_ms": kafka["intake_to_delivered_ms"]["p99"],
        "kafka.logged_p99_ms": kafka["intake_to_logged_ms"]["p99"],
    }
    if http := run.get("http"):
        out |= {
            "http.requests_per_s": http["requests_per_s"],
            "http.request_p50_ms": http["request_ms"]["p50"],
            "http.request_p99_ms": http["request_ms"]["p99"],
            "http.delivered_p99_ms": http["intake_to_delivered_ms"]["p99"],
            "http.logged_per_s": http["audit"]["signals_per_s"],
        }
    for paced in run.get("paced", []):
        at = f"paced.{paced['rate']:g}"
        out |= {
            f"{at}.answered_per_s": paced["answered_per_s"],
            f"{at}.request_p99_ms": paced["request_ms"]["p99"],
        }
    ms = per_signal_ms(run)
    for name in CHAIN:
        out[f"cpu.{name}"] = ms.get(name)
    out["cpu.chain"] = sum(ms.get(name, 0.0) for name in CHAIN)
    out["cpu.bench (this process)"] = ms.get("bench (this process)")
    if relay := run.get("relay"):
        out["relay.records_per_s"] = relay["records_per_s"]
        logged = audit["signals_per_s"]
        out["relay.chain_ratio"] = (
            logged / relay["records_per_s"] if logged and relay["records_per_s"] else None
        )
    return out


ROWS: tuple[tuple[str, str, str], ...] = (
    # (key, label, format)
    ("kafka.accepted_per_s", "kafka: all accepted, signals/s", "{:,.0f}"),
    ("kafka.delivered_per_s", "kafka: all delivered, signals/s", "{:,.0f}"),
    ("kafka.logged_per_s", "kafka: the audit log holds all, signals/s", "{:,.0f}"),
    ("kafka.lag_s", "kafka: log complete after the last delivery, s", "{:.1f}"),
    ("kafka.delivered_p50_ms", "kafka: intake -> delivered p50, ms", "{:,.0f}"),
    ("kafka.delivered_p99_ms", "kafka: intake -> delivered p99, ms", "{:,.0f}"),
    ("kafka.logged_p99_ms", "kafka: intake -> all facts logged p99, ms", "{:,.0f}"),
    ("http.requests_per_s", "http (closed loop): answered/s", "{:,.0f}"),
    ("http.request_p50_ms", "http: request p50, ms", "{:,.0f}"),
    ("http.request_p99_ms", "http: request p99, ms", "{:,.0f}"),
    ("http.delivered_p99_ms", "http: intake -> delivered p99, ms", "{:,.0f}"),
    ("http.logged_per_s", "http: the audit log holds all, signals/s", "{:,.0f}"),
)


def _cell(value: float | None, form: str) -> str:
    return form.format(value) if value is not None and not math.isnan(value) else "-"


def _ratio(two: float | None, one: float | None) -> str:
    return f"{two / one:.2f}x" if two is not None and one and not math.isnan(two) else "-"


def rows(one: dict[str, Any], two: dict[str, Any]) -> list[list[str]]:
    """The side-by-side table: label, the first run, the second, second / first."""
    a, b = figures(one), figures(two)
    table: list[list[str]] = [
        ["replicas of each service", _replica_note(one), _replica_note(two), ""],
        ["stores (signals, audit)", one.get("stores", "SQLite"), two.get("stores", "SQLite"), ""],
        ["signals over Kafka / HTTP", _sizes(one), _sizes(two), ""],
    ]
    for key, label, form in ROWS:
        if key in a or key in b:
            table.append(
                [label, _cell(a.get(key), form), _cell(b.get(key), form), _ratio(b.get(key), a.get(key))]
            )
    rates = sorted({key.split(".")[1] for key in (*a, *b) if key.startswith("paced.")}, key=float)
    for rate in rates:
        for what, label in (("answered_per_s", "answered/s"), ("request_p99_ms", "request p99, ms")):
            key = f"paced.{rate}.{what}"
            table.append(
                [
                    f"http at {rate}/s: {label}",
                    _cell(a.get(key), "{:,.0f}"),
                    _cell(b.get(key), "{:,.0f}"),
                    _ratio(b.get(key), a.get(key)),
                ]
            )
    for name in (*CHAIN, "chain", "bench (this process)"):
        key = f"cpu.{name}"
        if a.get(key) is None and b.get(key) is None:
            continue
        label = f"CPU ms/signal: {name}" if name != "chain" else "CPU ms/signal: the chain (c, the above)"
        table.append(
            [label, _cpu(one, name, a.get(key)), _cpu(two, name, b.get(key)), _ratio(b.get(key), a.get(key))]
        )
    table += [
        [
            "relay anchor: records/s",
            _cell(a.get("relay.records_per_s"), "{:,.0f}"),
            _cell(b.get("relay.records_per_s"), "{:,.0f}"),
            _ratio(b.get("relay.records_per_s"), a.get("relay.records_per_s")),
        ],
        [
            "chain / relay (signals/s until logged)",
            _cell(a.get("relay.chain_ratio"), "{:.3f}"),
            _cell(b.get("relay.chain_ratio"), "{:.3f}"),
            "",
        ],
        ["checks (denied delivered, duplicates)", _checks(one), _checks(two), ""],
        ["commit, load average at the end", _where(one), _where(two), ""],
    ]
    return table


def _replica_note(run: dict[str, Any]) -> str:
    count = replicas(run)
    if count == 1:
        return "1"
    holder = run.get("audit_lease_holder")
    return f"{count} (audit: leader {holder if holder is not None else '?'} + {count - 1} standby)"


def _sizes(run: dict[str, Any]) -> str:
    http = run.get("http", {}).get("signals", 0)
    return f"{run['kafka']['signals']:,} / {http:,}"


def _cpu(run: dict[str, Any], name: str, value: float | None) -> str:
    """A service's ms per signal, and each replica's beside it when it ran several."""
    cell = _cell(value, "{:.2f}")
    if name.startswith("services.") and len(each := replica_ms(run, name.removeprefix("services."))) > 1:
        cell += " (" + " + ".join(f"{ms:.2f}" for ms in each) + ")"
    return cell


def _checks(run: dict[str, Any]) -> str:
    checks = run.get("checks", {})
    missing = run["kafka"].get("missing_delivered", 0) + run.get("http", {}).get("missing_delivered", 0)
    return f"{sum(checks.values())} bad, {missing} missing"


def _where(run: dict[str, Any]) -> str:
    environment = run.get("environment", {})
    load = environment.get("load_average_1_5_15_min") or [math.nan]
    return f"{environment.get('commit', '?')}, {load[0]:.1f} on {environment.get('cpus', '?')} cores"


# -- what it says ------------------------------------------------------------------------------------


def estimate_rows(runs: list[dict[str, Any]], cores: int) -> list[list[str]]:
    """Per run: the formula at `cores`, at the cores the run had, and what the run measured."""
    table = []
    for run in runs:
        label = f"{replicas(run)} replica{'s' if replicas(run) > 1 else ''}"
        had = int(run.get("environment", {}).get("cpus") or 0)
        for at in dict.fromkeys((cores, had)):
            if not at:
                continue
            found = estimate(run, at)
            if found is None:
                table.append([label, f"{at}", "-", "-", "-", "no CPU measured"])
                continue
            services = ", ".join(f"{s} {v:,.0f}" for s, v in found.by_service.items())
            table.append(
                [
                    label,
                    f"{at}" + (" (this run's)" if at == had else ""),
                    f"{found.chain_ms:.2f}",
                    f"{found.by_cores:,.0f}",
                    services,
                    f"{found.signals_per_s:,.0f} (bound: {found.bound})",
                ]
            )
        measured = run["kafka"]["audit"]["signals_per_s"]
        table.append([label, "measured", "", "", "", _cell(measured, "{:,.0f}") + " until logged"])
    return table


def verdict(one: dict[str, Any], two: dict[str, Any], cores: int) -> list[str]:
    """What the two runs say, in sentences computed from their figures."""
    a, b = figures(one), figures(two)
    had = two.get("environment", {}).get("cpus", "?")
    lines = []
    for key, what in (
        ("kafka.logged_per_s", "signals/s until the audit log holds all (Kafka phase)"),
        ("kafka.delivered_per_s", "signals/s until delivered (Kafka phase)"),
        ("http.requests_per_s", "HTTP requests answered per second (closed loop)"),
    ):
        first, second = a.get(key), b.get(key)
        if not first or second is None:
            continue
        change = second / first - 1
        word = "no difference to speak of" if abs(change) < SAME else ("a gain" if change > 0 else "a loss")
        lines.append(
            f"{what}: {replicas(two)} replicas {second:,.0f}, 1 replica {first:,.0f}"
            f" ({change:+.0%}: {word}, on {had} cores, one run each)"
        )
    c1, c2 = a.get("cpu.chain"), b.get("cpu.chain")
    if c1 and c2:
        lines.append(
            f"CPU per signal of the chain: {c2:.2f} ms with {replicas(two)} replicas against {c1:.2f} ms"
            f" with 1 ({c2 / c1 - 1:+.0%}): what running replicas costs per signal"
            " (PostgreSQL, following verdicts, the standbys)."
        )
    for run in (one, two):
        found, ahead = estimate(run, cores), _formula_at_own_cores(run)
        if found is None:
            continue
        line = (
            f"{replicas(run)} replica(s) on {cores} cores, by the formula: {found.signals_per_s:,.0f}"
            f" signals/s (bound: {found.bound})"
        )
        if ahead is not None:
            measured, formula, had = ahead
            line += (
                f"; at this run's own {had} cores the formula gives {formula:,.0f} and the run measured"
                f" {measured:,.0f} until logged ({measured / formula:.0%} of it)"
            )
        lines.append(line + ".")
    return lines


def _formula_at_own_cores(run: dict[str, Any]) -> tuple[float, float, int] | None:
    """(measured signals/s until logged, the formula's figure at the run's own cores, those
    cores): how far the formula is from what the same machine did."""
    had = int(run.get("environment", {}).get("cpus") or 0)
    measured = run["kafka"]["audit"]["signals_per_s"]
    found = estimate(run, had) if had else None
    if found is None or not measured:
        return None
    return measured, found.signals_per_s, had


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", type=Path, required=True, help="bench.throughput --json of 1 replica")
    parser.add_argument("--two", type=Path, required=True, help="bench.throughput --json of 2 replicas")
    parser.add_argument("--cores", type=int, default=4, help="the node to estimate for (1..256)")
    parser.add_argument("--json", type=Path, help="also write the table and the estimates as JSON here")
    args = parser.parse_args()
    args.cores = max(1, min(args.cores, 256))
    one, two = load(args.one), load(args.two)
    console = make_console()
    table = rows(one, two)
    print_table(
        console,
        f"bench.throughput: {replicas(one)} and {replicas(two)} replicas of each service (one run each)",
        ["", args.one.name, args.two.name, "second / first"],
        table,
    )
    estimates = estimate_rows([one, two], args.cores)
    print_table(
        console,
        f"a node of {args.cores} cores, from each run's CPU per signal: min(N * 1000 / c,"
        " per service: consuming replicas * 1000 / its ms per signal)",
        ["run", "cores", "c (ms/signal)", "N * 1000 / c", "per service (signals/s)", "estimate"],
        estimates,
        left=1,
    )
    lines = verdict(one, two, args.cores)
    for line in lines:
        console.print(line)
    console.print(load_note())
    write_results(
        console,
        args.json,
        "replicas",
        {
            "arguments": vars(args),
            "table": [dict(zip(("figure", "first", "second", "ratio"), row, strict=True)) for row in table],
            "estimates": {
                str(replicas(run)): {
                    str(at): found.as_dict()
                    for at in dict.fromkeys((args.cores, int(run.get("environment", {}).get("cpus") or 0)))
                    if at and (found := estimate(run, at)) is not None
                }
                for run in (one, two)
            },
            "measured_signals_per_s": {
                str(replicas(run)): run["kafka"]["audit"]["signals_per_s"] for run in (one, two)
            },
            "verdict": lines,
        },
    )


if __name__ == "__main__":
    main()
