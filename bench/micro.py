"""Micro-benchmarks of the hot pure functions, in-process, no broker.

    python -m bench.micro [--repeat 5] [--pipeline-number 200] [--json FILE] [--profile N]

Each benchmark runs `repeat` rounds of `number` calls (timeit; the garbage collector is off
while timing, as timeit does) and reports the per-call time of the fastest and the median
round, and calls per second at the median. `--profile N` runs N intake pipeline calls under
cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import tempfile
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bench.common import (
    CONFIG_DIR,
    PERMITTED_PARTNER,
    iter_bsns,
    make_console,
    print_table,
    quiet_logs,
    signal,
    write_results,
)
from devstack.keys import prepare_development_keys
from services.consent.decision import SignalFacts, decide
from services.signals.intake import IntakePipeline, IntakeRecord
from services.signals.keystore import SqlKeyStore
from services.signals.ledger import SqlSignalLedger
from services.signals.validation import Invalid, parse_submission
from shared.contracts.agreements import Agreement, Directive, DirectiveKind, DirectiveScope
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import open_sealed, seal
from shared.contracts.crypto.signing import sign_record, verify_record
from shared.contracts.envelope import Envelope
from shared.contracts.events import Decision
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.signal import Category
from shared.plumbing.record_writer import RecordWriter

T = TypeVar("T")
BATCH = 100
"""Records per intake batch: SC_MAX_BATCH's default, up to which the Kafka intake takes a poll."""

PAYLOAD = os.urandom(1024)
CONTEXT = b"safety-chain/personal/v1|6c3e4c43-9d3f-4cc9-9d0a-6c3f7a1c2b11|0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Result:
    name: str
    number: int
    per_call: list[float]  # seconds per call, one entry per round

    @property
    def best(self) -> float:
        return min(self.per_call)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "repeat": len(self.per_call),
            "min_us": self.best * 1e6,
            "median_us": self.median * 1e6,
            "ops_per_s": 1 / self.median,
            "rounds_us": [t * 1e6 for t in self.per_call],
        }


def time_calls(name: str, call: Callable[[], object], repeat: int, number: int | None = None) -> Result:
    """`repeat` rounds of `number` calls (autoranged to at least 0.2 s a round when None)."""
    timer = timeit.Timer(call)
    if number is None:
        number, _ = timer.autorange()
    return Result(name, number, [total / number for total in timer.repeat(repeat=repeat, number=number)])


def time_batches(
    name: str, prepare: Callable[[int], list[T]], call: Callable[[T], object], repeat: int, number: int
) -> Result:
    """Like time_calls, for calls that each need fresh input: `prepare(number)` builds a
    round's inputs before the clock starts."""
    per_call = []
    for _ in range(repeat):
        inputs = prepare(number)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = timeit.default_timer()
            for item in inputs:
                call(item)
            elapsed = timeit.default_timer() - start
        finally:
            if gc_was_enabled:
                gc.enable()
        per_call.append(elapsed / number)
    return Result(name, number, per_call)


# -- fixtures -------------------------------------------------------------------------------


class Pipeline:
    """The intake pipeline as the unit tests' Harness builds it: real keys, a real SQLite key
    store and ledger in a temp folder, the real clock."""

    def __init__(self, root: Path) -> None:
        prepare_development_keys(root / "keys", CONFIG_DIR)  # every publisher's public key
        self.keys = KeyRing(root / "keys", generate_missing=True)  # plays signals and gm0363
        self.registry = Registry.load(CONFIG_DIR, self.keys)
        url = f"sqlite:///{root / 'signals.db'}"
        self.pipeline = IntakePipeline(
            self.registry,
            self.keys.secret("subject-pseudonyms"),
            SqlKeyStore(url, self.keys.secret("key-encryption-key")),
            SqlSignalLedger(url),
            self.keys.ed25519_private("signals").public_key(),
            self.keys.x25519_private("signals"),
        )
        signals = self.registry.source("signals")
        self.writer = RecordWriter(self.keys.ed25519_private("signals"), signals, "bench.")
        self._offset = 0
        self._fresh_subjects = iter_bsns()

    def records(self, count: int, new_subject: bool) -> list[IntakeRecord]:
        """`count` signed, sealed intake records, each with a fresh signal id (the ledger makes
        a signal id single-use); the subject is always the same or always a new one."""
        out = []
        for _ in range(count):
            document = signal(bsn_=next(self._fresh_subjects)) if new_subject else signal()
            value, headers = intake_record(
                json.dumps(document).encode(),
                self.registry.source("gm0363"),
                self.keys.ed25519_private("gm0363"),
                self.keys.x25519_public("signals"),
            )
            self._offset += 1
            out.append(IntakeRecord(value, headers, f"bench.signals.intake.v1:0:{self._offset}"))
        return out

    def process(self, record: IntakeRecord) -> None:
        """What the Kafka intake does per record: the pipeline, then the writer signs its records."""
        outcome = self.pipeline.process(record)
        self.writer.records(outcome.emitted)
        if outcome.accepted is None:
            reason = outcome.rejected.reason if outcome.rejected else "?"
            raise RuntimeError(f"the benchmark's signal was rejected: {reason}")

    def batches(self, count: int, new_subject: bool) -> list[list[IntakeRecord]]:
        """`count` records (see `records`) in batches of BATCH, as the Kafka intake polls them."""
        records = self.records(count, new_subject)
        return [records[start : start + BATCH] for start in range(0, count, BATCH)]

    def process_batch(self, records: list[IntakeRecord]) -> None:
        """What the Kafka intake does per batch: every record through the pipeline, then the
        stores' flush (the batch's ledger entries and new data keys, one SQLite transaction: the
        fsync) and the commit, as before the Kafka commit."""
        for record in records:
            self.process(record)
        self.pipeline.commit_pending()
        self.pipeline.committed()


def agreements_and_directives(now: datetime) -> tuple[list[Agreement], tuple[Directive, ...]]:
    """10 agreements naming veilig-thuis-amsterdam (some covering the signal, some requiring
    consent) and 5 directives of the subject: decide() walks every rule."""
    fields = ("category", "severity", "occurred_at", "purpose", "summary")
    agreements = [
        Agreement.model_validate(
            {
                "id": f"agreement-{i}",
                "version": 1,
                "title": f"Benchmark agreement {i}",
                "legal_basis": {"law": "Wmo 2015", "article": "art. 5.2.6"},
                "providers": ["gm0363", "gm0518"],
                "recipients": [
                    {"partner": "zvh-amsterdam", "fields": ["category"]},
                    {"partner": PERMITTED_PARTNER, "fields": list(fields[: 1 + i % len(fields)])},
                ],
                "categories": ["huiselijk_geweld"] if i % 2 == 0 else ["ondermijning", "woonoverlast"],
                "purposes": ["veiligheid_huiselijk_geweld"],
                "free_text_without_identity": True,  # the summary is among the fields
                "requires_subject_consent": i % 4 == 0,
                "objection_blocks": i % 3 != 0,
                "valid_from": "2026-01-01",
                "retention_days": 365,
            }
        )
        for i in range(10)
    ]

    def directive(kind: DirectiveKind, minutes: int, **scope: Any) -> Directive:
        return Directive(
            directive_id=uuid.uuid4(),
            kind=kind,
            scope=DirectiveScope(**scope),
            municipality="gm0363",
            recorded_at=now - timedelta(hours=1) + timedelta(minutes=minutes),
            recorded_by="gm0363",
        )

    directives = (
        directive(DirectiveKind.CONSENT_GIVEN, 1, agreement_id="agreement-0"),
        directive(DirectiveKind.CONSENT_GIVEN, 2, agreement_id="agreement-4"),
        directive(DirectiveKind.CONSENT_WITHDRAWN, 3, agreement_id="agreement-4"),
        directive(DirectiveKind.OBJECTION, 4, agreement_id="agreement-6"),
        directive(DirectiveKind.OBJECTION, 5, category="ondermijning"),
    )
    return agreements, directives


# -- the benchmarks --------------------------------------------------------------------------


def run(repeat: int, pipeline_number: int, root: Path, console: Console) -> list[Result]:
    keys = KeyRing(root / "crypto-keys", generate_missing=True)
    x_private, x_public = keys.x25519_private("recipient"), keys.x25519_public("recipient")
    ed_private = keys.ed25519_private("signer")
    ed_public = ed_private.public_key()
    box = seal(x_public, PAYLOAD, CONTEXT)
    headers = Envelope(
        source=Registry.load(CONFIG_DIR).source("signals"),
        type="nl.safetychain.signal.accepted.v1",
        subject="0" * 32,
    ).to_headers()
    signed = sign_record(ed_private, PAYLOAD, headers)
    data_key = datakeys.new_data_key()
    encrypted = datakeys.encrypt(data_key, PAYLOAD, CONTEXT)

    pipeline = Pipeline(root / "pipeline")
    raw_signal = json.dumps(signal()).encode()
    if isinstance(parse_submission(raw_signal, pipeline.registry), Invalid):
        raise RuntimeError("the benchmark's signal does not validate")

    now = datetime.now(UTC)
    agreements, directives = agreements_and_directives(now)
    facts = SignalFacts("gm0363", Category.HUISELIJK_GEWELD, "veiligheid_huiselijk_geweld")
    outcome = decide(facts, PERMITTED_PARTNER, agreements, now, directives)
    if outcome.decision is not Decision.PERMIT:
        raise RuntimeError(f"decide() did not permit: {outcome.reasons}")

    gm0363_source = pipeline.registry.source("gm0363")
    gm0363_key, signals_public = (
        pipeline.keys.ed25519_private("gm0363"),
        pipeline.keys.x25519_public("signals"),
    )
    benchmarks: list[tuple[str, Callable[[], object]]] = [
        ("sealing.seal (1 KiB)", lambda: seal(x_public, PAYLOAD, CONTEXT)),
        ("sealing.open_sealed (1 KiB)", lambda: open_sealed(x_private, box, CONTEXT)),
        ("signing.sign_record (1 KiB value)", lambda: sign_record(ed_private, PAYLOAD, headers)),
        ("signing.verify_record (1 KiB value)", lambda: verify_record([ed_public], PAYLOAD, signed)),
        ("datakeys.encrypt (1 KiB)", lambda: datakeys.encrypt(data_key, PAYLOAD, CONTEXT)),
        ("datakeys.decrypt (1 KiB)", lambda: datakeys.decrypt(data_key, encrypted, CONTEXT)),
        (
            "validation.parse_submission (huiselijk_geweld)",
            lambda: parse_submission(raw_signal, pipeline.registry),
        ),
        (
            "decision.decide (10 agreements, 5 directives)",
            lambda: decide(facts, PERMITTED_PARTNER, agreements, now, directives),
        ),
        (
            "publisher.intake_record (seal + sign)",
            lambda: intake_record(raw_signal, gm0363_source, gm0363_key, signals_public),
        ),
    ]
    results = []
    for name, call in benchmarks:
        console.print(f"[dim]timing {name}[/dim]")
        results.append(time_calls(name, call, repeat))
    for name, new_subject in (
        ("IntakePipeline.process (known subject)", False),
        ("IntakePipeline.process (new subject each call)", True),
    ):
        console.print(f"[dim]timing {name}[/dim]")
        pipeline.process_batch(pipeline.records(1, new_subject))  # warm: the first call opens the stores
        results.append(
            time_batches(
                name,
                partial(pipeline.batches, new_subject=new_subject),
                pipeline.process_batch,
                repeat,
                pipeline_number,  # per record: the rounds' batches hold pipeline_number records
            )
        )
    return results


def profile(calls: int, root: Path, console: Console) -> str:
    """cProfile over `calls` pipeline calls (known subject); the top functions by own time."""
    pipeline = Pipeline(root / "profile")
    pipeline.process_batch(pipeline.records(1, False))
    batches = pipeline.batches(calls, False)
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        pipeline.process_batch(batch)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per benchmark (1..20)")
    parser.add_argument("--pipeline-number", type=int, default=200, help="pipeline calls per round (1..2000)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N pipeline calls")
    args = parser.parse_args()
    repeat = max(1, min(args.repeat, 20))
    pipeline_number = max(1, min(args.pipeline_number, 2000))
    console = make_console()
    with quiet_logs(), tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        results = run(repeat, pipeline_number, Path(tmp), console)
        profile_text = profile(max(1, min(args.profile, 5000)), Path(tmp), console) if args.profile else ""
    print_table(
        console,
        f"micro-benchmarks ({repeat} rounds; per call)",
        ["benchmark", "calls/round", "min", "median", "ops/s (median)"],
        [
            [r.name, str(r.number), _duration(r.best), _duration(r.median), f"{1 / r.median:,.0f}"]
            for r in results
        ],
    )
    if profile_text:
        console.print(profile_text, markup=False, highlight=False)
    write_results(console, args.json, "micro", {"results": [r.as_dict() for r in results]})


def _duration(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    main()
