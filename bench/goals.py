"""Issue 20's goals beside this run's figures and the relay anchor; the compute floor per
service from bench.micro. Pure functions over the benchmarks' JSON results: nothing here is
asserted, a goal not met is a row that says so."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BURST = 2000  # the goal's burst, in signals


@dataclass(frozen=True)
class GoalRow:
    goal: str
    target: str
    figure: str
    met: str  # "yes", "no", or why it cannot say
    anchor: str

    def as_dict(self) -> dict[str, str]:
        return {
            "goal": self.goal,
            "target": self.target,
            "figure": self.figure,
            "met": self.met,
            "anchor": self.anchor,
        }


def load(path: Path | None) -> dict[str, Any] | None:
    """A benchmark's --json file, or None when not given or not readable."""
    if path is None:
        return None
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document


def _met(value: float | None, target: float, at_least: bool) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    return "yes" if (value >= target if at_least else value <= target) else "no"


def _rate(value: float | None, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value is not None else "did not complete"


def goal_rows(
    results: dict[str, Any], ingest: dict[str, Any] | None, verify: dict[str, Any] | None = None
) -> list[GoalRow]:
    kafka = results["kafka"]
    audit = kafka.get("audit", {})
    relay = results.get("relay") or {}
    relay_rate = relay.get("records_per_s")
    anchor = f"relay {relay_rate:,.0f} records/s" if relay_rate else "relay not run"

    def ratio(value: float | None) -> str:
        return f"{value / relay_rate:.2f}x the relay" if value and relay_rate else "-"

    rows = []
    ingest_rate = (ingest or {}).get("appends_per_s")
    ingest_whole = (ingest or {}).get("appends_per_s_with_startup")
    rows.append(
        GoalRow(
            "audit: ingest a pre-filled topic",
            ">= 2,000 appends/s",
            (
                f"{_rate(ingest_rate, 'appends/s')} ({ingest.get('facts', 0):,} facts; "
                f"{_rate(ingest_whole, '/s')} with start-up)"
                if ingest
                else "not run (bench.audit_ingest --json, then --ingest-json)"
            ),
            _met(ingest_rate, 2000, True) if ingest else "not measured",
            f"{anchor} ({ratio(ingest_rate)}, per fact)" if ingest_rate else anchor,
        )
    )
    lag = audit.get("after_last_delivery_s")
    burst = kafka["signals"]
    rows.append(
        GoalRow(
            f"audit: a {BURST:,}-signal burst fully logged",
            "<= 10 s after the last delivery",
            (f"{lag:.1f} s after it" if lag is not None else "not all logged in time")
            + f" ({burst:,} signals, {audit.get('facts_expected', 0):,} facts)",
            _met(lag, 10, False) if burst >= BURST else f"{_met(lag, 10, False)} (smaller burst)",
            "-",
        )
    )
    whole = audit.get("signals_per_s")
    delivered = kafka["signals"] / kafka["all_delivered_s"] if kafka.get("all_delivered_s") else None
    rows.append(
        GoalRow(
            "end to end, the audit log keeping pace",
            ">= 250 signals/s",
            f"{_rate(whole, 'signals/s')} until logged; {_rate(delivered, 'signals/s')} until delivered",
            _met(whole, 250, True),
            f"{anchor}; chain/relay {ratio(whole)} (logged), {ratio(delivered)} (delivered)",
        )
    )
    for rate, target in ((50, 100.0), (150, 250.0)):
        paced = next((p for p in results.get("paced", []) if round(p["rate"]) == rate), None)
        rows.append(_http_goal(rate, target, paced))
    rows.append(_verification_goal((verify or {}).get("verification")))
    rows.append(
        GoalRow(
            "crash tests",
            "kill -9 of audit during a batch: every fact exactly once",
            "not a benchmark: the e2e tests (make test)",
            "see make test",
            "-",
        )
    )
    return rows


def _verification_goal(measured: dict[str, Any] | None) -> GoalRow:
    """The verification goals from bench.audit_verify: a full run at one million records (its
    per-record cost times a million when the store was smaller), a routine run reading only the
    new records, a proof."""
    goal = "verification"
    target = "full 1M records <= 10 s; routine: only new records; proofs < 10 ms at 1M"
    if measured is None:
        return GoalRow(
            goal, target, "not run (bench.audit_verify --json, then --verify-json)", "not measured", "-"
        )
    records, full = measured["records"], measured["full_at_a_million_s"]
    scaled = "" if records >= 1_000_000 else f" (measured at {records:,}: {measured['full_s']:.1f} s)"
    routine_only_new = measured["routine_records_read"] == measured["routine_new_records"]
    figure = (
        f"full {full:.1f} s at 1M{scaled}; routine after {measured['routine_new_records']:,} new:"
        f" {1e3 * measured['routine_s']:.0f} ms, {measured['routine_records_read']:,} records read;"
        f" proof p50 {measured['proof_ms_median']:.1f} ms at {measured['size']:,}"
    )
    met = full <= 10 and routine_only_new and measured["proof_ms_median"] < 10
    return GoalRow(goal, target, figure, "yes" if met else "no", "-")


def _http_goal(rate: int, target: float, paced: dict[str, Any] | None) -> GoalRow:
    """An HTTP goal; its figure counts only when the bench offered the rate (a starved bench
    offers less, and its own lateness is in the latencies: it counts from when a POST was due)."""
    goal, limit = f"HTTP at {rate} signals/s", f"p99 <= {target:.0f} ms"
    if paced is None:
        return GoalRow(goal, limit, "not run (--http-rates)", "not measured", "-")
    requests, late = paced["request_ms"], paced["late_ms"]
    offered = paced["offered_per_s"] or 0.0
    figure = (
        f"p99 {requests['p99']:.0f} ms (p50 {requests['p50']:.0f}); offered {offered:.0f}/s,"
        f" answered {paced['answered_per_s']:.0f}/s; the bench late by p99 {late['p99']:.0f} ms"
    )
    met = _met(requests["p99"], target, False)
    if offered < 0.9 * rate:
        met = f"{met} (the bench offered only {offered:.0f}/s)"
    return GoalRow(goal, limit, figure, met, "-")


# -- the compute floor per service -------------------------------------------------------------

FLOOR_RECIPES: dict[str, tuple[tuple[str, str], ...]] = {
    # service -> (bench.micro benchmark, how many per signal: a key of `per_signal_counts`)
    "services.signals": (("IntakePipeline.process (known subject)", "one"),),
    "services.consent": (
        ("signing.verify_record", "consumed"),  # accepted records and data-key records
        ("sealing.open_sealed", "keys"),  # a data-key record's key, sealed to consent
        ("decision.decide", "decisions"),
        ("datakeys.decrypt", "deliveries"),
        ("sealing.seal", "deliveries"),
        ("signing.sign_record", "written"),  # decisions, deliveries, recipients records
    ),
    "services.audit": (("signing.verify_record", "facts"),),
}


def micro_medians(micro: dict[str, Any] | None) -> dict[str, float]:
    """bench.micro's median seconds per call, by the benchmark's name without its parenthesis
    (and by its full name)."""
    medians: dict[str, float] = {}
    for result in (micro or {}).get("results", []):
        name, seconds = result["name"], result["median_us"] / 1e6
        medians[name] = seconds
        medians.setdefault(name.split(" (")[0], seconds)
    return medians


def per_signal_counts(
    records_per_signal: dict[str, float], facts_per_signal: float | None
) -> dict[str, float]:
    """How often per signal the run did what each floor recipe counts, from the records the
    broker appended per signal (bench.brokerlog) and the facts per signal."""

    def records(topic: str) -> float:
        return records_per_signal.get(topic, 0.0)

    if not records_per_signal:  # no broker log to count from: only what needs none
        return {"one": 1.0, "facts": facts_per_signal or 0.0}
    deliveries = records("partner.*.signals.v1")
    return {
        "one": 1.0,
        "keys": records("subjects.keys.v1"),
        "consumed": records("signals.accepted.v1") + records("subjects.keys.v1"),
        "decisions": records("exchange.decisions.v1"),
        "deliveries": deliveries,
        "written": records("exchange.decisions.v1") + deliveries + records("consent.recipients.v1"),
        "facts": facts_per_signal or 0.0,
    }


def floors(micro: dict[str, Any] | None, counts: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per service: the compute floor per signal (seconds), the sum of bench.micro's medians
    times how often the run did each, and the recipe in words. Empty without bench.micro."""
    medians = micro_medians(micro)
    out: dict[str, dict[str, Any]] = {}
    for service, recipe in FLOOR_RECIPES.items():
        if not medians or any(name not in medians or count not in counts for name, count in recipe):
            continue
        parts = [(name, counts[count]) for name, count in recipe]
        out[service] = {
            "floor_s": sum(medians[name] * times for name, times in parts),
            "recipe": " + ".join(
                f"{name}" if times == 1.0 else f"{times:.2f} x {name}" for name, times in parts if times
            ),
        }
    return out
