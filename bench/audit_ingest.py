"""The audit service alone: how fast it logs a backlog already on its topics.

    python -m bench.audit_ingest --signals 1000 [--json FILE]

Starts its own broker and the three services (bench.stack), as bench.throughput does. Once the
audit log holds what start-up wrote (the agreements), the audit service is stopped (SIGTERM), N
signals go through signals and consent (every `--denied-every`-th denied, as in
bench.throughput), and the bench waits until every record of them is on the audited topics:
accepted records, consent's decisions and deliveries, signed by the services that wrote them,
as in production. Then audit is started again on that backlog (its consumer group resumes at
its committed offsets) and the clock runs until the audit log holds every one of those records
(bench.auditlog: by provenance, read-only from its database). Every check audit makes stays on.

It reports appends per second from the first append the bench saw to the last (the ingest
rate), and from the moment audit was started (so with its start-up), audit's CPU per fact, and
the record batches the broker appended meanwhile (bench.brokerlog: audit's offset commits).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import brokerlog
from bench.auditlog import AuditedTopics, AuditStoreWatch, Provenance
from bench.common import (
    DENIED_CATEGORY,
    bsns,
    load_note,
    make_console,
    mixed_signals,
    number,
    print_table,
    seconds,
    write_results,
)
from bench.stack import Running, cpu_sample, delivery_ids, publisher, running_stack

MAX_SIGNALS = 20_000


@dataclass
class Ingest:
    running: Running
    args: argparse.Namespace
    console: Console
    deadline: float

    async def run(self) -> dict[str, Any]:
        stack = self.running.stack
        signal_of: dict[str, str] = {}
        audited = AuditedTopics(stack.kafka_options(), stack.prefix, signal_of)
        store = AuditStoreWatch(stack.audit_db)
        await audited.start()
        readers = [asyncio.create_task(audited.run()), asyncio.create_task(store.run())]
        try:
            return await self.measure(audited, store, signal_of)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await audited.stop()
            store.close()

    async def wait(self, done: Any, what: str, seconds: float) -> None:
        deadline = min(self.deadline, time.monotonic() + seconds)
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {seconds:.0f} s")
            await asyncio.sleep(0.05)

    async def measure(
        self, audited: AuditedTopics, store: AuditStoreWatch, signal_of: dict[str, str]
    ) -> dict[str, Any]:
        stack, args = self.running.stack, self.args
        # what start-up wrote (agreements) is logged first, then audit stops
        await asyncio.sleep(2.0)  # the audited topics are read from their start by then
        startup = dict(audited.unattributed)
        await self.wait(lambda: all(p in store.held for p in startup), "the start-up facts logged", 120)
        self.console.print(f"the audit log holds start-up's {len(startup)} facts; stopping audit")
        await asyncio.to_thread(stack.services["audit"].stop)

        # the backlog: N signals through signals and consent, audit down
        documents = mixed_signals(args.signals, args.denied_every, bsns(args.subjects))
        ids = {d["signal_id"] for d in documents}
        to_deliver = {d["signal_id"] for d in documents if d["category"] != DENIED_CATEGORY}
        signal_of.update(delivery_ids(stack, ids))
        self.console.print(f"filling the audited topics: {len(ids)} signals through signals and consent")
        filling = time.monotonic()
        await publisher(stack).publish(documents)
        await self.wait(lambda: not audited.unfinished(ids, to_deliver), "the backlog on Kafka", 600)
        await asyncio.sleep(1.0)  # a record of them still on its way would be read by now
        expected: dict[Provenance, str] = {**audited.provenances(ids)}
        expected |= {p: kind for p, kind in audited.unattributed.items() if p not in startup}
        already = sum(1 for p in expected if p in store.held)
        self.console.print(
            f"backlog: {len(expected):,} records on the audited topics after"
            f" {time.monotonic() - filling:.1f} s; starting audit"
        )

        # audit on the backlog, the clock running
        before = self.broker_snapshot()
        cpu_start, start = cpu_sample(), time.monotonic()
        stack.services["audit"].start()
        ready = asyncio.create_task(asyncio.to_thread(stack.services["audit"].wait_ready))
        first: tuple[float, int, dict[str, float]] | None = None  # time, held, CPU then
        last: tuple[float, dict[str, float]] | None = None
        deadline = min(self.deadline, start + args.timeout)
        ready_at: float | None = None
        while time.monotonic() < deadline:
            if ready_at is None and ready.done():
                ready.result()  # raises when audit did not come up
                ready_at = time.monotonic()
            held = [store.held[p][0] for p in expected if p in store.held]
            if first is None and len(held) > already:
                first = (min(held), len(held), cpu_sample())
            if len(held) == len(expected):
                last = (max(held), cpu_sample())
                break
            await asyncio.sleep(0.05)
        if not ready.done():
            ready.cancel()
        held_count = sum(1 for p in expected if p in store.held)
        appended = self.appended(before, len(expected))
        kinds = Counter(
            kind.rsplit(".", 2)[-2] if kind.count(".") >= 2 else kind for kind in expected.values()
        )
        result: dict[str, Any] = {
            "signals": len(ids),
            "facts": len(expected),
            "facts_held": held_count,
            "already_held_before_start": already,
            "facts_per_signal": len(expected) / len(ids),
            "facts_by_type": dict(sorted(kinds.items())),
            "audit_ready_s": (ready_at - start) if ready_at else None,
            "first_append_s": (first[0] - start) if first else None,
            "all_held_s": (last[0] - start) if last else None,
            "appends_per_s": None,
            "appends_per_s_with_startup": None,
            "audit_cpu_ms_per_fact": None,
            "broker_cpu_ms_per_fact": None,
            "store_error": store.error,
            "broker_batches": appended,
        }
        if first and last:
            steady = last[0] - first[0]
            result["appends_per_s"] = (len(expected) - first[1]) / steady if steady > 0 else None
            result["appends_per_s_with_startup"] = len(expected) / (last[0] - start)
            for name, key in (
                ("services.audit", "audit_cpu_ms_per_fact"),
                ("kafka broker", "broker_cpu_ms_per_fact"),
            ):
                if name in last[1] and name in first[2]:
                    result[key] = 1e3 * (last[1][name] - first[2][name]) / (len(expected) - first[1])
            result["cpu_s_from_start"] = {
                name: last[1][name] - cpu_start.get(name, 0.0) for name in sorted(last[1])
            }
        else:
            self.console.print(
                f"[yellow]the audit log held {held_count:,} of {len(expected):,} facts when the wait"
                f" ended (store: {store.error or 'read'})[/yellow]"
            )
        return result

    def broker_snapshot(self) -> brokerlog.Snapshot | None:
        log_dir = self.running.log_dir
        return brokerlog.snapshot(log_dir) if log_dir is not None else None

    def appended(self, before: brokerlog.Snapshot | None, units: int) -> dict[str, dict[str, Any]] | None:
        after = self.broker_snapshot()
        if before is None or after is None:
            return None
        return brokerlog.per_unit(brokerlog.by_topic(before, after, self.running.stack.prefix), units)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit_ingest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--signals", type=int, default=1000, help=f"signals whose records fill the topics (1..{MAX_SIGNALS})"
    )
    parser.add_argument("--denied-every", type=int, default=4, help="every n-th signal is radicalisering")
    parser.add_argument("--subjects", type=int, default=500, help="distinct subjects the signals cycle over")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for audit to log the backlog")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs into this folder")
    args = parser.parse_args()
    args.signals = max(1, min(args.signals, MAX_SIGNALS))
    args.subjects = max(1, min(args.subjects, 10_000))
    args.timeout = max(10.0, min(args.timeout, 3600.0))
    console = make_console()
    with running_stack(console, "audit-ingest", {}, args.keep_logs) as running:
        ingest = Ingest(running, args, console, time.monotonic() + args.timeout + 900)
        results = asyncio.run(asyncio.wait_for(ingest.run(), args.timeout + 960))
        results["startup_restarts"] = running.restarts
    report(console, args, results)


def report(console: Console, args: argparse.Namespace, results: dict[str, Any]) -> None:
    rows = [
        ["signals whose records filled the topics", f"{results['signals']:,}"],
        ["facts to log (records on the audited topics)", f"{results['facts']:,}"],
        ["  per signal", f"{results['facts_per_signal']:.2f}"],
        ["  by type", ", ".join(f"{k}: {v:,}" for k, v in results["facts_by_type"].items())],
        ["audit started -> ready (/readyz)", seconds(results["audit_ready_s"])],
        ["audit started -> first append seen", seconds(results["first_append_s"])],
        ["audit started -> the log holds all", seconds(results["all_held_s"])],
        ["appends/s, first append -> all held", number(results["appends_per_s"], "{:,.0f}/s")],
        ["appends/s, audit started -> all held", number(results["appends_per_s_with_startup"], "{:,.0f}/s")],
        ["audit CPU per fact (first -> last append)", number(results["audit_cpu_ms_per_fact"], "{:.3f} ms")],
        ["broker CPU per fact (the same window)", number(results["broker_cpu_ms_per_fact"], "{:.3f} ms")],
        ["goal (issue 20)", ">= 2,000 appends/s"],
    ]
    print_table(console, "audit ingest of a pre-filled backlog (one run)", ["", ""], rows)
    if results["broker_batches"] is not None:
        print_table(
            console,
            "broker: record batches appended while audit ingested, per fact",
            brokerlog.batch_columns("fact"),
            brokerlog.batch_rows(results["broker_batches"]),
        )
    console.print(load_note())
    write_results(console, args.json, "audit_ingest", {"arguments": vars(args), **results})


if __name__ == "__main__":
    main()
