"""The audit log's verification and proofs on a large SQLite store: issue 20's verification goals.

It builds a store of `--records` facts in a temp folder with the store's batch append (500 a
batch, as the intake appends a poll) and a checkpoint after every batch (as the issuer makes one
every five seconds while the log grows), then times, in this process and on this store:
- a full verification (`verify_fully`: what `audit verify --database` and every start run),
  and its CPU per record;
- a routine verification after `--new` more records (`verify_since` from the full run's head:
  what the console's and the API's verifications run);
- the newest checkpoint looked up (`latest_checkpoint`) and one by its size (`checkpoint`);
- the proof of a record in the newest checkpoint (`proofs.prove`: the inclusion path, the
  cosigned note and the proof file checked before it is handed out).

Building a million records takes minutes (the batch append does about 3,000 a second here), so
`make bench` measures a smaller store and states the figure at one million by the per-record
cost (a full verification is linear in the records: one read, one encoding and one hash each,
and one pass per tree level); `--records 1000000` measures it.

    .venv/bin/python -m bench.audit_verify --records 200000 --json .local/bench/audit-verify.json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from bench.common import make_console, quiet_logs, write_results
from services.audit.log.checkpoints import CheckpointIssuer
from services.audit.log.facts import AuditFact
from services.audit.log.proofs import prove
from services.audit.log.sql_store import SqlAuditStore
from services.audit.log.verification import verify_fully, verify_since
from shared.contracts.events import AuditCheckpoint
from shared.contracts.tlog.note import Signer, Verifier

ORIGIN = "safety-chain.bench/audit-log"
BATCH = 500
MILLION = 1_000_000
PARTNERS = ("politie-eenheid-amsterdam", "zvh-amsterdam", "veilig-thuis-amsterdam", "riec-amsterdam")


def facts(start: int, count: int) -> list[AuditFact]:
    """`count` facts as a signal makes them: accepted, decided per partner (with reasons and
    fields), delivered; each at its own Kafka position."""
    at = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    made = []
    for offset in range(start, start + count):
        kind = offset % 6
        common: dict[str, Any] = {
            "event_id": f"e-{offset}",
            "event_time": at + timedelta(milliseconds=offset),
            "correlation_id": f"{offset:032x}",
            "signal_id": f"{offset // 6:08x}-0000-4000-8000-000000000000",
            "subject_pseudonym": f"{offset // 60:032x}",
            "category": "huiselijk_geweld",
            "kafka_partition": offset % 3,
            "kafka_offset": offset,
        }
        if kind == 0:
            made.append(
                AuditFact(
                    event_type="nl.safetychain.signal.accepted.v1",
                    source="gm0363",
                    kafka_topic="signals.accepted.v1",
                    **common,
                )
            )
        elif kind < 5:
            made.append(
                AuditFact(
                    event_type="nl.safetychain.exchange.decided.v1",
                    source="consent",
                    target=PARTNERS[kind - 1],
                    purpose="veiligheid_huiselijk_geweld",
                    legal_basis="Wmo 2015 art. 5.2.6",
                    agreement_id="vt-huiselijk-geweld-amsterdam",
                    agreement_version=2,
                    fields=["category", "subject.bsn", "summary"] if kind == 3 else [],
                    decision="permit" if kind == 3 else "deny",
                    reasons=["covered by vt-huiselijk-geweld-amsterdam v2"]
                    if kind == 3
                    else [f"no agreement covers huiselijk_geweld for {PARTNERS[kind - 1]}"],
                    kafka_topic="exchange.decisions.v1",
                    **common,
                )
            )
        else:
            made.append(
                AuditFact(
                    event_type="nl.safetychain.signal.delivered.v1",
                    source="consent",
                    target="veilig-thuis-amsterdam",
                    delivery_id=f"d-{offset}",
                    fields=["category", "subject.bsn", "summary"],
                    kafka_topic="partner.veilig-thuis-amsterdam.signals.v1",
                    **common,
                )
            )
    return made


class Clock:
    """The issuer's clock: five seconds pass between batches, so each batch ends with a checkpoint."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _nothing(_: AuditCheckpoint) -> None:
    return None


def grow(store: SqlAuditStore, issuer: CheckpointIssuer, clock: Clock, start: int, count: int) -> None:
    for first in range(start, start + count, BATCH):
        store.append_batch(facts(first, min(BATCH, start + count - first)))
        clock.now += 5.0
        asyncio.run(issuer.issue_if_due())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(call: Any) -> tuple[Any, float, float]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = call()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def profile_full(store: SqlAuditStore, log_key: Verifier, top: int) -> str:
    """A full verification under cProfile: the top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    verify_fully(store, log_key=log_key)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(records: int, new: int, root: Path, console: Console, profile: int = 0) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    log_key = Verifier(ORIGIN, key.public_key())
    store = SqlAuditStore(f"sqlite:///{root / 'audit.db'}")
    clock = Clock()
    issuer = CheckpointIssuer(store, Signer(ORIGIN, key), _nothing, clock=clock)
    console.print(f"building a store of {records:,} records ({BATCH} a batch, a checkpoint each)")
    _, build_s, _ = timed(lambda: grow(store, issuer, clock, 0, records))
    console.print(f"built in {build_s:.1f} s ({records / build_s:,.0f} appends/s); verifying fully")

    (full, head), full_s, full_cpu = timed(lambda: verify_fully(store, log_key=log_key))
    if not full.intact or head is None:
        raise RuntimeError(f"the benchmark's store does not verify: {full.problem}")

    if profile:
        console.print(profile_full(store, log_key, profile))
    grow(store, issuer, clock, records, new)
    routine, routine_s, _ = timed(lambda: verify_since(store, head, log_key=log_key))
    if routine is None or not routine[0].intact:
        raise RuntimeError("the routine verification did not verify the new records")

    newest, latest_s, _ = timed(store.latest_checkpoint)
    by_size, by_size_s, _ = timed(lambda: store.checkpoint(newest.size // 2 // BATCH * BATCH))
    if by_size is None:
        raise RuntimeError("no checkpoint at a batch boundary")
    record = store.record(newest.size // 3)
    assert record is not None
    proof_times = []
    for _ in range(20):
        _, proof_s, _ = timed(lambda: prove(store, record, log_key))
        proof_times.append(proof_s)
    proof_times.sort()
    size = records + new
    return {
        "records": records,
        "build_s": build_s,
        "appends_per_s": records / build_s,
        "checkpoints": len(store.checkpoints()),
        "full_s": full_s,
        "full_cpu_s": full_cpu,
        "full_us_per_record": 1e6 * full_s / records,
        "full_cpu_us_per_record": 1e6 * full_cpu / records,
        "full_at_a_million_s": full_s / records * MILLION,
        "routine_new_records": new,
        "routine_s": routine_s,
        "routine_records_read": routine[0].records_checked - records if routine else None,
        "latest_checkpoint_ms": 1e3 * latest_s,
        "checkpoint_by_size_ms": 1e3 * by_size_s,
        "proof_ms_median": 1e3 * proof_times[len(proof_times) // 2],
        "proof_ms_max": 1e3 * proof_times[-1],
        "size": size,
        "database_mb": os.path.getsize(root / "audit.db") / 1e6,
    }


def report(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"audit log verification, SQLite, {result['records']:,} records")
    table.add_column("")
    table.add_column("result", justify="right")
    table.add_row("batch append while building", f"{result['appends_per_s']:,.0f} appends/s")
    table.add_row("checkpoints in the store", f"{result['checkpoints']:,}")
    table.add_row(
        "full verification",
        f"{result['full_s']:.2f} s ({result['full_us_per_record']:.1f} µs a record, "
        f"{result['full_cpu_us_per_record']:.1f} µs CPU)",
    )
    table.add_row(
        "full verification at one million (per-record cost)", f"{result['full_at_a_million_s']:.1f} s"
    )
    table.add_row(
        f"routine verification after {result['routine_new_records']:,} new records",
        f"{1e3 * result['routine_s']:.1f} ms",
    )
    table.add_row(
        "newest checkpoint / one by size",
        f"{result['latest_checkpoint_ms']:.2f} ms / {result['checkpoint_by_size_ms']:.2f} ms",
    )
    table.add_row(
        "proof of a record (median / max of 20)",
        f"{result['proof_ms_median']:.2f} ms / {result['proof_ms_max']:.2f} ms",
    )
    table.add_row("database", f"{result['database_mb']:,.0f} MB")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=int, default=200_000, help=f"records in the store (1000..{MILLION})"
    )
    parser.add_argument(
        "--new", type=int, default=1000, help="records appended before the routine verification"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile a full verification: the top N functions",
    )
    args = parser.parse_args(argv)
    records = max(1000, min(args.records, MILLION))
    console = make_console()
    with quiet_logs(), tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        result = run(records, max(1, min(args.new, 100_000)), Path(tmp), console, args.profile)
    report(result, console)
    write_results(console, args.json, "audit_verify", {"arguments": vars(args), "verification": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
