"""End-to-end throughput and latency: the three services as processes on a real local broker.

    python -m bench.throughput --signals 2000 [--http 200] [--json FILE]

Starts `devstack.kafka.LocalKafka` in a temp folder (or uses KAFKA_BOOTSTRAP_SERVERS), the
three services as `tests.e2e.stack.Stack` starts them (fresh topic prefix), publishes a few
warm-up signals, then N signals over the Kafka intake with `publisher.IntakePublisher`: every
`--denied-every`-th is radicalisering (accepted by signals, denied by consent for everyone), the
rest huiselijk_geweld (delivered to veilig-thuis-amsterdam). It measures

  - the publish rate (IntakePublisher.publish, producer start and stop included),
  - the time from the first publish until every signal is on signals.accepted.v1 and every
    permitted delivery is on the partner topic (both read_committed),
  - per signal: intake record ce_time -> accepted record ce_time, and -> delivered_at,
  - the CPU time each process (broker, services, this one) used meanwhile.

`--http N` then POSTs N more signals to /v1/signals with a few concurrent clients and measures
request latency and rate, and the same end-to-end latencies. Traffic stays on 127.0.0.1;
every wait is bounded by `--timeout`; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from rich.console import Console

from bench.common import (
    DENIED_CATEGORY,
    PERMITTED_PARTNER,
    PROJECT_ROOT,
    bsns,
    environment,
    make_console,
    mixed_signals,
    print_table,
    summary,
    write_json,
)
from devstack.kafka import KafkaAccess, LocalKafka
from publisher import IntakePublisher
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.pseudonyms import delivery_id
from shared.contracts.events import SignalDelivered
from shared.contracts.topics import SIGNALS_ACCEPTED, SIGNALS_INTAKE, partner_topic
from tests.e2e.stack import Stack

MAX_SIGNALS = 20_000
MAX_HTTP = 5_000
MAX_CLIENTS = 16

# -- watching topics -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    seen_at: float  # time.monotonic() when this process read the record
    time: datetime  # the record's own time (ce_time, or delivered_at for deliveries)


Parse = Callable[[ConsumerRecord], tuple[str, datetime] | None]


def header(record: ConsumerRecord, name: str) -> str | None:
    return next((value.decode() for key, value in record.headers if key == name), None)


def by_header(record: ConsumerRecord) -> tuple[str, datetime] | None:
    """(ce_signalid, ce_time) of an accepted record."""
    signal_id, ce_time = header(record, "ce_signalid"), header(record, "ce_time")
    return (signal_id, datetime.fromisoformat(ce_time)) if signal_id and ce_time else None


def by_key(record: ConsumerRecord) -> tuple[str, datetime] | None:
    """(record key = signal id, ce_time) of an intake record."""
    ce_time = header(record, "ce_time")
    return (record.key.decode(), datetime.fromisoformat(ce_time)) if record.key and ce_time else None


def delivery(signal_of: dict[str, str]) -> Callable[[ConsumerRecord], tuple[str, datetime] | None]:
    """(signal id, delivered_at) of a delivery, from its value (no need to open the payload).
    A delivery names only the partner's own delivery id: `signal_of` maps those back."""

    def parse(record: ConsumerRecord) -> tuple[str, datetime] | None:
        delivered = SignalDelivered.model_validate_json(record.value or b"")
        signal_id = signal_of.get(str(delivered.delivery_id))
        return (signal_id, delivered.delivered_at) if signal_id else None

    return parse


@dataclass
class TopicWatch:
    """Reads one topic from its start (read_committed) and remembers, per signal id, when it
    first saw a record of it and that record's time; counts every record per id."""

    options: dict[str, Any]  # how to connect (KafkaAccess.client_options)
    topic: str
    parse: Parse
    seen: dict[str, Sighting] = field(default_factory=dict)
    count: Counter[str] = field(default_factory=Counter)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.options, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        self._consumer = consumer
        deadline = time.monotonic() + 30
        while not (partitions := consumer.partitions_for_topic(self.topic)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} does not exist")
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.2)
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)

    async def run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    parsed = self.parse(record)
                    if parsed is None:
                        continue
                    signal_id, at = parsed
                    self.count[signal_id] += 1
                    self.seen.setdefault(signal_id, Sighting(now, at))

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for(self, ids: set[str], deadline: float) -> float | None:
        """The moment the last of `ids` was seen; None when `deadline` (monotonic) passed first."""
        while not ids <= self.seen.keys():
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
        return max((self.seen[i].seen_at for i in ids), default=time.monotonic())

    def missing(self, ids: set[str]) -> int:
        return len(ids - self.seen.keys())


# -- CPU time per process ---------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, str]:
    """This process's child processes, named by what they run."""
    names: dict[int, str] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                words = [w.decode(errors="replace") for w in cmdline if w]
                service = next((w for w in words if w.startswith("services.")), None)
                names[int(pid)] = service or (
                    "kafka broker" if "kafka.Kafka" in words else " ".join(words[:2])
                )
    return names


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def cpu_sample() -> dict[str, float]:
    """CPU seconds used so far by each child process and by this one."""
    sample = {
        name: seconds for pid, name in _children().items() if (seconds := _cpu_seconds(pid)) is not None
    }
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sample["bench (this process)"] = usage.ru_utime + usage.ru_stime
    return sample


def cpu_between(
    before: dict[str, float], after: dict[str, float], wall: float
) -> dict[str, dict[str, float]]:
    return {
        name: {"cpu_s": after[name] - before[name], "core_pct": 100 * (after[name] - before[name]) / wall}
        for name in sorted(after)
        if name in before and wall > 0
    }


def signal_services(signum: int) -> list[int]:
    """Send `signum` to every service process (the sampler's on/dump switch); their pids."""
    pids = [pid for pid, name in _children().items() if name.startswith("services.")]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    return pids


def collect_samples(sample_dir: Path, pids: list[int], phase: str, deadline: float) -> list[Path]:
    """Wait (bounded) for each sampled service's dump and name it after the phase."""
    collected = []
    for pid in pids:
        while not (found := sorted(sample_dir.glob(f"*-{pid}-*.txt"))) and time.monotonic() < deadline:
            time.sleep(0.05)
        for path in found:
            target = sample_dir / f"{phase}-{path.name.split('-')[0]}.txt"
            path.rename(target)
            collected.append(target)
    return collected


# -- the phases -------------------------------------------------------------------------------


def permitted(documents: Iterable[dict[str, Any]]) -> set[str]:
    return {d["signal_id"] for d in documents if d["category"] != DENIED_CATEGORY}


def latencies_ms(ids: Iterable[str], start: TopicWatch, end: TopicWatch) -> list[float]:
    return [
        (end.seen[i].time - start.seen[i].time).total_seconds() * 1e3
        for i in ids
        if i in start.seen and i in end.seen
    ]


@dataclass
class Bench:
    stack: Stack
    args: argparse.Namespace
    console: Console
    deadline: float
    subjects: list[str]
    intake: TopicWatch = field(init=False)
    accepted: TopicWatch = field(init=False)
    delivered: TopicWatch = field(init=False)
    denied: set[str] = field(default_factory=set)  # ids of every denied signal sent
    signal_of: dict[str, str] = field(default_factory=dict)  # the partner's delivery id -> signal id
    _sampled: list[int] = field(default_factory=list, init=False)  # pids of sampled services

    def __post_init__(self) -> None:
        options, prefix = self.stack.kafka_options(), self.stack.prefix
        self.intake = TopicWatch(options, SIGNALS_INTAKE.prefixed(prefix), by_key)
        self.accepted = TopicWatch(options, SIGNALS_ACCEPTED.prefixed(prefix), by_header)
        self.delivered = TopicWatch(
            options, partner_topic(PERMITTED_PARTNER).prefixed(prefix), delivery(self.signal_of)
        )

    @property
    def watches(self) -> tuple[TopicWatch, ...]:
        return self.intake, self.accepted, self.delivered

    def publisher(self) -> IntakePublisher:
        keys = KeyRing(self.stack.keys_dir, generate_missing=True)
        return IntakePublisher(
            "gm0363",
            keys.ed25519_private("gm0363"),
            keys.x25519_public("signals"),
            self.stack.kafka_options("gm0363"),
            self.stack.prefix,
        )

    def signals(self, count: int) -> list[dict[str, Any]]:
        documents = mixed_signals(count, self.args.denied_every, self.subjects)
        self.denied |= {d["signal_id"] for d in documents} - permitted(documents)
        key = KeyRing(self.stack.keys_dir, generate_missing=True).secret("partner-pseudonyms")
        for signal_id in (d["signal_id"] for d in documents):  # denied ones too: a check counts them
            self.signal_of[str(delivery_id(key, PERMITTED_PARTNER, signal_id))] = signal_id
        return documents

    async def run(self) -> dict[str, Any]:
        for watch in self.watches:
            await watch.start()
        readers = [asyncio.create_task(watch.run()) for watch in self.watches]
        try:
            await self.warm_up()
            results: dict[str, Any] = {"kafka": await self.kafka_phase()}
            if self.args.http:
                results["http"] = await self.http_phase()
            results["checks"] = self.checks()
            return results
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for watch in self.watches:
                await watch.stop()

    async def warm_up(self) -> None:
        """A few signals through the whole chain first: connections, consumer groups, the first
        transactions and the first subject keys are not what the measurement is about."""
        documents = self.signals(self.args.warmup)
        self.console.print(f"warm-up: {len(documents)} signals")
        await self.publisher().publish(documents)
        if await self.delivered.wait_for(permitted(documents), self.deadline) is None:
            raise TimeoutError("the warm-up signals were not delivered in time")

    async def kafka_phase(self) -> dict[str, Any]:
        documents = self.signals(self.args.signals)
        ids, delivered_ids = {d["signal_id"] for d in documents}, permitted(documents)
        self.console.print(
            f"kafka intake: {len(documents)} signals ({len(delivered_ids)} to be delivered to"
            f" {PERMITTED_PARTNER}, {len(ids) - len(delivered_ids)} {DENIED_CATEGORY}, denied)"
        )
        self.sampling(signal.SIGUSR1)
        cpu_before, start = cpu_sample(), time.monotonic()
        await self.publisher().publish(documents)
        published = time.monotonic()
        all_accepted = await self.accepted.wait_for(ids, self.deadline)
        all_delivered = await self.delivered.wait_for(delivered_ids, self.deadline)
        end = time.monotonic()
        cpu = cpu_between(cpu_before, cpu_sample(), end - start)
        await self.collect("kafka")
        await self.intake.wait_for(ids, min(self.deadline, time.monotonic() + 10))
        return {
            "signals": len(ids),
            "to_deliver": len(delivered_ids),
            "denied_category": len(ids) - len(delivered_ids),
            "distinct_subjects": len({d["subject"]["bsn"] for d in documents}),
            "publish_s": published - start,
            "publish_per_s": len(ids) / (published - start),
            "all_accepted_s": (all_accepted - start) if all_accepted else None,
            "accepted_per_s": len(ids) / (all_accepted - start) if all_accepted else None,
            "all_delivered_s": (all_delivered - start) if all_delivered else None,
            "delivered_per_s": len(delivered_ids) / (all_delivered - start) if all_delivered else None,
            "missing_accepted": self.accepted.missing(ids),
            "missing_delivered": self.delivered.missing(delivered_ids),
            "intake_to_accepted_ms": summary(latencies_ms(ids, self.intake, self.accepted)),
            "accepted_to_delivered_ms": summary(latencies_ms(delivered_ids, self.accepted, self.delivered)),
            "intake_to_delivered_ms": summary(latencies_ms(delivered_ids, self.intake, self.delivered)),
            "cpu": cpu,
        }

    async def http_phase(self) -> dict[str, Any]:
        documents = self.signals(self.args.http)
        ids, delivered_ids = {d["signal_id"] for d in documents}, permitted(documents)
        clients = self.args.http_clients
        self.console.print(f"http intake: {len(documents)} signals, {clients} concurrent clients")
        pending = iter(documents)
        request_ms: list[float] = []
        statuses: Counter[str] = Counter()
        headers = {"authorization": f"Bearer {self.stack.token()}", "content-type": "application/json"}

        async def client_loop(client: httpx.AsyncClient) -> None:
            for document in pending:  # one shared iterator: each document is posted once
                began = time.monotonic()
                response = await client.post("/v1/signals", content=json.dumps(document).encode())
                request_ms.append((time.monotonic() - began) * 1e3)
                body = response.json() if response.status_code == 202 else {}
                statuses[f"{response.status_code} {body.get('status', '')}".strip()] += 1

        async with httpx.AsyncClient(
            base_url=self.stack.url("signals"), headers=headers, timeout=30
        ) as client:
            self.sampling(signal.SIGUSR1)
            cpu_before, start = cpu_sample(), time.monotonic()
            await asyncio.gather(*(client_loop(client) for _ in range(clients)))
            answered = time.monotonic()
        all_delivered = await self.delivered.wait_for(delivered_ids, self.deadline)
        end = time.monotonic()
        cpu = cpu_between(cpu_before, cpu_sample(), end - start)
        await self.collect("http")
        await self.intake.wait_for(ids, min(self.deadline, time.monotonic() + 10))
        return {
            "signals": len(ids),
            "clients": clients,
            "to_deliver": len(delivered_ids),
            "requests_s": answered - start,
            "requests_per_s": len(ids) / (answered - start),
            "statuses": dict(statuses),
            "request_ms": summary(request_ms),
            "all_delivered_s": (all_delivered - start) if all_delivered else None,
            "missing_delivered": self.delivered.missing(delivered_ids),
            "intake_to_accepted_ms": summary(latencies_ms(ids, self.intake, self.accepted)),
            "intake_to_delivered_ms": summary(latencies_ms(delivered_ids, self.intake, self.delivered)),
            "cpu": cpu,
        }

    def sampling(self, signum: int) -> None:
        if self.args.sample:
            self._sampled = signal_services(signum)

    async def collect(self, phase: str) -> None:
        if self.args.sample:
            self.sampling(signal.SIGUSR2)
            deadline = min(self.deadline, time.monotonic() + 10)
            collected = await asyncio.to_thread(
                collect_samples, self.args.sample, self._sampled, phase, deadline
            )
            for path in collected:
                self.console.print(f"stack samples: {path}")

    def checks(self) -> dict[str, int]:
        """Exactly once and deny by default, as far as the records seen by the end show."""
        return {
            "deliveries of denied signals": len(self.delivered.seen.keys() & self.denied),
            "duplicate deliveries": sum(n - 1 for n in self.delivered.count.values() if n > 1),
            "duplicate accepted records": sum(n - 1 for n in self.accepted.count.values() if n > 1),
        }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=2000, help=f"signals over Kafka (1..{MAX_SIGNALS})")
    parser.add_argument("--http", type=int, default=0, help=f"then signals over HTTP (0..{MAX_HTTP})")
    parser.add_argument(
        "--http-clients", type=int, default=4, help=f"concurrent HTTP clients (1..{MAX_CLIENTS})"
    )
    parser.add_argument("--denied-every", type=int, default=4, help="every n-th signal is radicalisering")
    parser.add_argument(
        "--subjects", type=int, default=500, help="distinct subjects (BSNs) the signals cycle over"
    )
    parser.add_argument("--warmup", type=int, default=200, help="signals through the chain first (1..2000)")
    parser.add_argument("--max-batch", type=int, help="SC_MAX_BATCH for signals and consent (default 100)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole measurement")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--sample",
        type=Path,
        metavar="DIR",
        help="sample the services' stacks (wall clock) while measuring; reports go to DIR."
        " Sampling costs CPU: take the numbers from a run without it",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs into this folder")
    args = parser.parse_args()
    args.signals = max(1, min(args.signals, MAX_SIGNALS))
    args.http = max(0, min(args.http, MAX_HTTP))
    args.http_clients = max(1, min(args.http_clients, MAX_CLIENTS))
    args.warmup = max(1, min(args.warmup, 2000))
    args.subjects = max(1, min(args.subjects, 10_000))
    args.timeout = max(10.0, min(args.timeout, 3600.0))
    console = make_console()
    extra_env = {"SC_MAX_BATCH": str(args.max_batch)} if args.max_batch else {}
    if args.sample:
        args.sample = args.sample.resolve()
        args.sample.mkdir(parents=True, exist_ok=True)
        python_path = [str(PROJECT_ROOT / "bench" / "sampler"), os.environ.get("PYTHONPATH", "")]
        extra_env["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
        extra_env["SC_BENCH_SAMPLE_DIR"] = str(args.sample)

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        broker: LocalKafka | None = None
        stack: Stack | None = None
        try:
            existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if existing:
                kafka = KafkaAccess(existing)
            else:
                console.print("starting a local Kafka broker")
                broker = LocalKafka(Path(tmp) / "kafka").start()
                kafka = broker.access
            console.print(f"starting signals, consent and audit against {kafka.bootstrap_servers}")
            stack = Stack(kafka, f"bench{uuid.uuid4().hex[:8]}.", Path(tmp) / "stack", extra_env)
            started = time.monotonic()
            restarts = start_stack(stack, console)
            console.print(f"services ready in {time.monotonic() - started:.1f}s")
            bench = Bench(stack, args, console, time.monotonic() + args.timeout, bsns(args.subjects))
            results = asyncio.run(asyncio.wait_for(bench.run(), args.timeout + 60))
            results["startup_restarts"] = restarts
        finally:
            if stack is not None:
                stack.stop()
                if args.keep_logs:
                    shutil.copytree(stack.workdir / "logs", args.keep_logs, dirs_exist_ok=True)
            if broker is not None:
                broker.stop()
    report(console, args, results)


def start_stack(stack: Stack, console: Console, attempts: int = 3) -> list[str]:
    """Stack.start(), restarting a service that exits during start-up (seen: consent, when
    the topics it just created are not yet in its metadata); returns the restarted names."""
    restarted: list[str] = []
    try:
        stack.start()
        return restarted
    except RuntimeError as error:
        failure: Exception = error
    for _ in range(attempts):
        down = [name for name, service in stack.services.items() if not service.running]
        console.print(f"[yellow]{failure}; restarting {', '.join(down)}[/yellow]")
        restarted += down
        try:
            for name in down:
                stack.services[name].start()
            for service in stack.services.values():
                service.wait_ready()
            return restarted
        except RuntimeError as error:
            failure = error
    raise failure


def report(console: Console, args: argparse.Namespace, results: dict[str, Any]) -> None:
    kafka = results["kafka"]
    rows = [
        ["signals published over Kafka", f"{kafka['signals']}"],
        ["  of which to deliver / denied", f"{kafka['to_deliver']} / {kafka['denied_category']}"],
        ["  distinct subjects", f"{kafka['distinct_subjects']}"],
        [
            "publish (IntakePublisher.publish)",
            f"{kafka['publish_s']:.2f} s = {kafka['publish_per_s']:,.0f}/s",
        ],
        ["all accepted (signals.accepted.v1)", _rate(kafka["all_accepted_s"], kafka["signals"])],
        ["all permitted delivered (partner topic)", _rate(kafka["all_delivered_s"], kafka["to_deliver"])],
        ["  signals of both categories by then", _rate(kafka["all_delivered_s"], kafka["signals"])],
    ]
    if "http" in results:
        http = results["http"]
        rows += [
            [f"HTTP POSTs ({http['clients']} clients)", f"{http['signals']}"],
            ["  answered", f"{http['requests_s']:.2f} s = {http['requests_per_s']:,.0f}/s"],
            ["  statuses", ", ".join(f"{k}: {v}" for k, v in sorted(http["statuses"].items()))],
            ["  all permitted delivered", _rate(http["all_delivered_s"], http["to_deliver"])],
        ]
    rows += [[name, str(value)] for name, value in results["checks"].items()]
    rows.append(["services restarted at start-up", ", ".join(results["startup_restarts"]) or "none"])
    print_table(console, "throughput (one run; wall clock from the first publish)", ["", ""], rows)

    latency_rows = [
        [f"kafka: {name}", *_percentiles(kafka[key])]
        for name, key in (
            ("intake ce_time -> accepted ce_time", "intake_to_accepted_ms"),
            ("accepted ce_time -> delivered_at", "accepted_to_delivered_ms"),
            ("intake ce_time -> delivered_at", "intake_to_delivered_ms"),
        )
    ]
    if "http" in results:
        http = results["http"]
        latency_rows += [
            ["http: request (client side)", *_percentiles(http["request_ms"])],
            ["http: intake ce_time -> accepted ce_time", *_percentiles(http["intake_to_accepted_ms"])],
            ["http: intake ce_time -> delivered_at", *_percentiles(http["intake_to_delivered_ms"])],
        ]
    print_table(console, "latency per signal (ms)", ["", "n", "p50", "p95", "p99", "max"], latency_rows)

    phases = [("kafka", kafka["cpu"])] + ([("http", results["http"]["cpu"])] if "http" in results else [])
    names = sorted({name for _, cpu in phases for name in cpu})
    print_table(
        console,
        "CPU while measuring (% of one core; the machine has " + str(os.cpu_count()) + ")",
        ["process", *(phase for phase, _ in phases)],
        [
            [name, *(f"{cpu[name]['core_pct']:.0f}%" if name in cpu else "-" for _, cpu in phases)]
            for name in names
        ],
    )
    if args.json:
        write_json(
            args.json,
            {"benchmark": "throughput", "environment": environment(), "arguments": vars(args), **results},
        )
        console.print(f"wrote {args.json}")


def _rate(seconds: float | None, count: int) -> str:
    return f"{seconds:.2f} s = {count / seconds:,.0f}/s" if seconds else "did not complete in time"


def _percentiles(stats: dict[str, float]) -> list[str]:
    return [f"{stats['n']:.0f}", *(f"{stats[k]:.0f}" for k in ("p50", "p95", "p99", "max"))]


if __name__ == "__main__":
    main()
