"""End-to-end throughput and latency: the three services as processes on a real local broker.

    python -m bench.throughput --signals 2000 [--http 200] [--http-rates 50,150] [--json FILE]
        [--replicas N] [--micro-json FILE] [--ingest-json FILE] [--verify-json FILE]

Starts `devstack.kafka.LocalKafka` in a temp folder (or uses KAFKA_BOOTSTRAP_SERVERS), the
three services as `tests.e2e.stack.Stack` starts them (fresh topic prefix), publishes a few
warm-up signals, then N signals over the Kafka intake with `publisher.IntakePublisher`: every
`--denied-every`-th is radicalisering (accepted by signals, denied by consent for everyone), the
rest huiselijk_geweld (delivered to veilig-thuis-amsterdam). It measures

  - the publish rate (IntakePublisher.publish, producer start and stop included),
  - the time from the first publish until every signal is on signals.accepted.v1 and every
    permitted delivery is on the partner topic (both read_committed),
  - the time until the audit log holds every fact of those signals (bench.auditlog), facts
    per second and per signal,
  - per signal: intake record ce_time -> accepted record ce_time, -> delivered_at, and -> the
    moment the audit log held the last of its facts,
  - the CPU time each process (broker, services, this one) used meanwhile, per signal beside
    the compute floor from bench.micro (--micro-json),
  - the record batches the broker appended per topic, per signal (bench.brokerlog).

`--http N` then POSTs N more signals to /v1/signals with a few concurrent clients and measures
request latency and rate, and the same end-to-end latencies. The anchor (bench.relay, on by
default): as many intake-sized records through a two-hop transactional aiokafka relay on the
same broker. `--http-rates 50,150` then offers HTTP signals at those steady rates (open loop).
Last, issue 20's goals beside this run's figures (bench.goals; bench.audit_ingest's figure from
--ingest-json, bench.audit_verify's from --verify-json).

`--replicas N` (default 1) runs N replicas of signals and of consent and N of audit (a leader
and N - 1 hot standbys), with signals' and audit's stores in a PostgreSQL server the benchmark
starts in its temp folder (with one replica the stores stay SQLite, as in earlier runs). The
HTTP phases spread their requests over the signals replicas, round robin, as a load balancer
would; CPU is reported per service (its replicas summed) and per replica, PostgreSQL's too.

Traffic stays on 127.0.0.1; every wait is bounded (`--timeout`, and `--audit-timeout` per wait
for the audit log); every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from rich.console import Console

from bench import brokerlog, goals, rawhttp, relay
from bench.auditlog import AuditedTopics, AuditOutcome, AuditStoreWatch, held_latencies_ms, wait_until_held
from bench.brokerlog import Snapshot
from bench.common import (
    CONFIG_DIR,
    DENIED_CATEGORY,
    PERMITTED_PARTNER,
    PROJECT_ROOT,
    bsns,
    load_note,
    make_console,
    mixed_signals,
    number,
    print_table,
    seconds,
    summary,
    write_results,
)
from bench.stack import (
    Running,
    count_apart,
    cpu_between,
    cpu_sample,
    delivery_ids,
    is_replica,
    publisher,
    running_stack,
    service_pids,
)
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.events import SignalDelivered
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.contracts.topics import SIGNALS_ACCEPTED, SIGNALS_INTAKE, partner_topic
from tests.e2e.stack import Stack

MAX_SIGNALS = 20_000
MAX_HTTP = 5_000
MAX_CLIENTS = 16
MAX_RATE = 1000.0  # signals/s offered over HTTP
MAX_IN_FLIGHT = 32  # HTTP requests (connections) at once in the paced phases
MAX_REPLICAS = 4  # of each service
DEFAULT_MAX_BATCH = 100  # the services' SC_MAX_BATCH default: the relay polls as much

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


# -- stack sampling -------------------------------------------------------------------------


def signal_services(signum: int) -> list[int]:
    """Send `signum` to every service process (the sampler's on/dump switch); their pids."""
    pids = service_pids()
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


def per_signal_cpu(cpu: dict[str, dict[str, float]], signals: int) -> dict[str, dict[str, float]]:
    """CPU seconds per process over a window, with milliseconds per signal."""
    return {name: {**used, "ms_per_signal": 1e3 * used["cpu_s"] / signals} for name, used in cpu.items()}


@dataclass
class Bench:
    running: Running
    args: argparse.Namespace
    console: Console
    deadline: float
    subjects: list[str]
    intake: TopicWatch = field(init=False)
    accepted: TopicWatch = field(init=False)
    delivered: TopicWatch = field(init=False)
    audited: AuditedTopics = field(init=False)
    store: AuditStoreWatch = field(init=False)
    denied: set[str] = field(default_factory=set)  # ids of every denied signal sent
    signal_of: dict[str, str] = field(default_factory=dict)  # the partner's delivery id -> signal id
    signal_of_any: dict[str, str] = field(default_factory=dict)  # any partner's delivery id -> signal id
    unsettled: tuple[set[str], set[str]] | None = None  # a phase's (ids, to deliver) not yet logged
    lease_holder: str | None = None  # the audit replica that held the sequencer's lease at the end
    _sampled: list[int] = field(default_factory=list, init=False)  # pids of sampled services

    def __post_init__(self) -> None:
        options, prefix = self.stack.kafka_options(), self.stack.prefix
        self.intake = TopicWatch(options, SIGNALS_INTAKE.prefixed(prefix), by_key)
        self.accepted = TopicWatch(options, SIGNALS_ACCEPTED.prefixed(prefix), by_header)
        self.delivered = TopicWatch(
            options, partner_topic(PERMITTED_PARTNER).prefixed(prefix), delivery(self.signal_of)
        )
        self.audited = AuditedTopics(options, prefix, self.signal_of_any)
        self.store = AuditStoreWatch(self.stack.database_url or self.stack.audit_db, on_backend=count_apart)

    @property
    def stack(self) -> Stack:
        return self.running.stack

    @property
    def watches(self) -> tuple[TopicWatch, ...]:
        return self.intake, self.accepted, self.delivered

    @property
    def signals_replicas(self) -> list[str]:
        """The signals replicas' names in stack.services: the HTTP phases take turns over them."""
        return self.running.replicas_of("signals")

    def signals(self, count: int) -> list[dict[str, Any]]:
        documents = mixed_signals(count, self.args.denied_every, self.subjects)
        ids = [d["signal_id"] for d in documents]
        self.denied |= set(ids) - permitted(documents)
        # denied ones too: a check counts them
        self.signal_of.update(delivery_ids(self.stack, ids, [PERMITTED_PARTNER]))
        self.signal_of_any.update(delivery_ids(self.stack, ids))
        return documents

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def broker_snapshot(self) -> Snapshot | None:
        log_dir = self.running.log_dir
        return brokerlog.snapshot(log_dir) if log_dir is not None else None

    def appended(self, before: Snapshot | None, units: int) -> dict[str, dict[str, Any]] | None:
        """What the broker appended since `before`, per topic, per `units` (signals, records)."""
        after = self.broker_snapshot()
        if before is None or after is None:
            return None
        return brokerlog.per_unit(brokerlog.by_topic(before, after, self.stack.prefix), units)

    async def run(self) -> dict[str, Any]:
        for watch in self.watches:
            await watch.start()
        await self.audited.start()
        readers = [asyncio.create_task(watch.run()) for watch in self.watches]
        readers += [asyncio.create_task(self.audited.run()), asyncio.create_task(self.store.run())]
        try:
            await self.warm_up()
            results: dict[str, Any] = {"kafka": await self.kafka_phase()}
            if self.args.http:
                results["http"] = await self.http_phase()
            if self.args.relay:
                results["relay"] = await self.relay_phase()
            results["paced"] = []
            for rate in self.args.http_rates:
                results["paced"].append(await self.paced_phase(rate, self.args.http_seconds))
            results["checks"] = self.checks()
            return results
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for watch in self.watches:
                await watch.stop()
            await self.audited.stop()
            self.lease_holder = self.store.lease_holder()
            self.store.close()

    async def audit_holds(
        self, ids: set[str], to_deliver: set[str], on_held: Callable[[], None] | None = None
    ) -> AuditOutcome:
        """Wait (bounded by --audit-timeout) until the audit log holds every fact of `ids`."""
        deadline = min(self.deadline, time.monotonic() + self.args.audit_timeout)
        outcome = await wait_until_held(self.audited, self.store, ids, to_deliver, deadline, on_held=on_held)
        if not outcome.complete:
            self.console.print(
                f"[yellow]the audit log held {len(outcome.held_at):,} of {len(outcome.expected):,}"
                f" facts when the wait ended ({outcome.unfinished_signals} signals not fully on Kafka;"
                f" store: {outcome.store_error or 'read'})[/yellow]"
            )
        return outcome

    async def settle(self) -> float | None:
        """Before a phase: wait until the previous one's facts are logged (it did not wait);
        how long that took, None when nothing was pending."""
        if self.unsettled is None:
            return None
        began = time.monotonic()
        self.console.print("waiting until the audit log holds the previous phase's facts")
        await self.audit_holds(*self.unsettled)
        self.unsettled = None
        return time.monotonic() - began

    async def warm_up(self) -> None:
        """A few signals through the whole chain first: connections, consumer groups, the first
        transactions and the first subject keys are not what the measurement is about. The
        audit log takes them in before the measurement starts."""
        documents = self.signals(self.args.warmup)
        self.console.print(f"warm-up: {len(documents)} signals")
        began = time.monotonic()
        await publisher(self.stack).publish(documents)
        if await self.delivered.wait_for(permitted(documents), self.deadline) is None:
            raise TimeoutError("the warm-up signals were not delivered in time")
        outcome = await self.audit_holds({d["signal_id"] for d in documents}, permitted(documents))
        self.console.print(
            f"warm-up: the audit log holds its {len(outcome.expected):,} facts"
            f" after {time.monotonic() - began:.1f} s"
        )

    async def kafka_phase(self) -> dict[str, Any]:
        documents = self.signals(self.args.signals)
        ids, delivered_ids = {d["signal_id"] for d in documents}, permitted(documents)
        self.console.print(
            f"kafka intake: {len(documents)} signals ({len(delivered_ids)} to be delivered to"
            f" {PERMITTED_PARTNER}, {len(ids) - len(delivered_ids)} {DENIED_CATEGORY}, denied)"
        )
        batches_before = self.broker_snapshot()
        self.sampling(signal.SIGUSR1)
        cpu_before, start = cpu_sample(), time.monotonic()
        await publisher(self.stack).publish(documents)
        published = time.monotonic()
        all_accepted = await self.accepted.wait_for(ids, self.deadline)
        all_delivered = await self.delivered.wait_for(delivered_ids, self.deadline)
        end = time.monotonic()
        cpu = cpu_between(cpu_before, cpu_sample(), end - start)
        await self.collect("kafka")
        self.console.print("kafka intake: waiting until the audit log holds every fact of it")
        at_held: list[tuple[float, dict[str, float]]] = []
        audit = await self.audit_holds(
            ids, delivered_ids, on_held=lambda: at_held.append((time.monotonic(), cpu_sample()))
        )
        held_at, cpu_held = at_held[-1] if at_held else (time.monotonic(), cpu_sample())
        await self.intake.wait_for(ids, min(self.deadline, time.monotonic() + 10))
        appended = self.appended(batches_before, len(ids))
        audit_figures = audit.as_dict(start, all_delivered)
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
            "intake_to_logged_ms": held_latencies_ms(audit, self.intake_times(ids)),
            "cpu": cpu,
            "audit": audit_figures,
            "cpu_whole_path": per_signal_cpu(cpu_between(cpu_before, cpu_held, held_at - start), len(ids)),
            "broker_batches": appended,
        }

    def intake_times(self, ids: Iterable[str]) -> dict[str, float]:
        return {i: self.intake.seen[i].time.timestamp() for i in ids if i in self.intake.seen}

    async def http_phase(self) -> dict[str, Any]:
        documents = self.signals(self.args.http)
        ids, delivered_ids = {d["signal_id"] for d in documents}, permitted(documents)
        clients = self.args.http_clients
        self.console.print(f"http intake: {len(documents)} signals, {clients} concurrent clients")
        pending = iter(documents)
        request_ms: list[float] = []
        statuses: Counter[str] = Counter()
        by_replica: Counter[str] = Counter()
        headers = {"authorization": f"Bearer {self.stack.token()}", "content-type": "application/json"}
        # each request goes to the next signals replica in turn, as a round-robin load balancer
        turns = itertools.cycle(self.signals_replicas)

        async def client_loop(client: httpx.AsyncClient) -> None:
            for document in pending:  # one shared iterator: each document is posted once
                replica = next(turns)
                by_replica[replica] += 1
                began = time.monotonic()
                response = await client.post(
                    f"{self.stack.url(replica)}/v1/signals", content=json.dumps(document).encode()
                )
                request_ms.append((time.monotonic() - began) * 1e3)
                body = response.json() if response.status_code == 202 else {}
                statuses[f"{response.status_code} {body.get('status', '')}".strip()] += 1

        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            self.sampling(signal.SIGUSR1)
            cpu_before, start = cpu_sample(), time.monotonic()
            await asyncio.gather(*(client_loop(client) for _ in range(clients)))
            answered = time.monotonic()
        all_delivered = await self.delivered.wait_for(delivered_ids, self.deadline)
        end = time.monotonic()
        cpu = cpu_between(cpu_before, cpu_sample(), end - start)
        await self.collect("http")
        audit = await self.audit_holds(ids, delivered_ids)
        await self.intake.wait_for(ids, min(self.deadline, time.monotonic() + 10))
        return {
            "signals": len(ids),
            "clients": clients,
            "to_deliver": len(delivered_ids),
            "requests_s": answered - start,
            "requests_per_s": len(ids) / (answered - start),
            "statuses": dict(statuses),
            "requests_by_replica": dict(by_replica),
            "request_ms": summary(request_ms),
            "all_delivered_s": (all_delivered - start) if all_delivered else None,
            "missing_delivered": self.delivered.missing(delivered_ids),
            "intake_to_accepted_ms": summary(latencies_ms(ids, self.intake, self.accepted)),
            "intake_to_delivered_ms": summary(latencies_ms(delivered_ids, self.intake, self.delivered)),
            "intake_to_logged_ms": held_latencies_ms(audit, self.intake_times(ids)),
            "cpu": cpu,
            "audit": audit.as_dict(start, all_delivered),
        }

    async def relay_phase(self) -> dict[str, Any]:
        """The anchor: as many records as the Kafka phase had signals, each a copy of a real
        intake record (value, key and headers), through a two-hop transactional relay."""
        count = self.args.signals
        self.console.print(f"relay (anchor): {count} intake-sized records through two transactional hops")
        keys = KeyRing(self.stack.keys_dir, generate_missing=True)
        source = Registry.load(CONFIG_DIR).source("gm0363")
        signing, sealing = keys.ed25519_private("gm0363"), keys.x25519_public("signals")
        records: list[relay.Record] = []
        for document in mixed_signals(count, self.args.denied_every, self.subjects):
            value, headers = intake_record(json.dumps(document).encode(), source, signing, sealing)
            records.append((document["signal_id"].encode(), value, headers))
        batches_before = self.broker_snapshot()
        cpu_before, start = cpu_sample(), time.monotonic()
        run = await relay.run_relay(
            self.stack.kafka_options(),
            self.stack.prefix,
            records,
            max_batch=self.args.max_batch or DEFAULT_MAX_BATCH,
            linger_ms=self.args.relay_linger_ms,
            seconds=min(self.remaining(), 300.0),
        )
        cpu = cpu_between(cpu_before, cpu_sample(), time.monotonic() - start)
        return {
            **run.as_dict(),
            "record_bytes": statistics.fmean(
                len(value) + sum(len(k) + len(v) for k, v in headers) for _, value, headers in records
            ),
            "max_batch": self.args.max_batch or DEFAULT_MAX_BATCH,
            "linger_ms": self.args.relay_linger_ms,
            "broker_cpu_ms_per_record": (
                1e3 * cpu["kafka broker"]["cpu_s"] / count if "kafka broker" in cpu else None
            ),
            "broker_batches": self.appended(batches_before, count),
        }

    async def paced_phase(self, rate: float, seconds: float) -> dict[str, Any]:
        """HTTP at a steady offered rate (open loop): a POST is due every 1/rate s whatever the
        answers do; each request's latency counts from when it was due, so a slow answer that
        holds back the next one is counted too. One credential (the rate limit is raised)."""
        settled = await self.settle()
        documents = self.signals(max(1, round(rate * seconds)))
        ids, delivered_ids = {d["signal_id"] for d in documents}, permitted(documents)
        self.console.print(f"http at {rate:g}/s: {len(documents)} signals over {seconds:g} s (open loop)")
        headers = {"authorization": f"Bearer {self.stack.token()}", "content-type": "application/json"}
        request_ms: list[float] = []
        late_ms: list[float] = []
        statuses: Counter[str] = Counter()

        # Pools of plain keep-alive connections (bench.rawhttp: httpx's CPU per request made
        # the bench itself the bottleneck at 150/s), one per signals replica, MAX_IN_FLIGHT
        # shared out; the n-th POST goes to replica n mod R (round robin) and takes a free
        # connection of its pool.
        replicas = self.signals_replicas
        free: dict[str, asyncio.Queue[rawhttp.Connection]] = {name: asyncio.Queue() for name in replicas}
        by_replica: Counter[str] = Counter()

        async def post(document: dict[str, Any], due: float, replica: str) -> None:
            late_ms.append((time.monotonic() - due) * 1e3)
            by_replica[replica] += 1
            connection = await free[replica].get()  # all busy: the wait counts from `due`
            try:
                status, body = await connection.post("/v1/signals", json.dumps(document).encode())
                verdict = json.loads(body).get("status", "") if status == 202 else ""
                statuses[f"{status} {verdict}".strip()] += 1
            except (rawhttp.HttpError, ValueError) as error:
                statuses[type(error).__name__] += 1
            finally:
                free[replica].put_nowait(connection)
            request_ms.append((time.monotonic() - due) * 1e3)

        per_replica = max(1, MAX_IN_FLIGHT // len(replicas))
        connections = []
        for name in replicas:
            for _ in range(per_replica):
                connection = rawhttp.Connection(self.stack.url(name), headers)
                connections.append(connection)
                free[name].put_nowait(connection)
        batches_before = self.broker_snapshot()
        try:
            self.sampling(signal.SIGUSR1)
            cpu_before, start = cpu_sample(), time.monotonic()
            tasks = []
            for n, document in enumerate(documents):
                due = start + n / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tasks.append(asyncio.create_task(post(document, due, replicas[n % len(replicas)])))
            offered = time.monotonic()
            await asyncio.gather(*tasks)
            answered = time.monotonic()
        finally:
            for connection in connections:
                await connection.close()
        all_delivered = await self.delivered.wait_for(delivered_ids, self.deadline)
        cpu = cpu_between(cpu_before, cpu_sample(), time.monotonic() - start)
        appended = self.appended(batches_before, len(ids))  # until delivered: audit is not waited for
        await self.collect(f"http-{rate:g}")
        self.unsettled = (ids, delivered_ids)
        return {
            "rate": rate,
            "seconds": seconds,
            "signals": len(ids),
            "audit_settled_before_s": settled,
            "offered_per_s": len(ids) / (offered - start) if offered > start else None,
            "answered_per_s": len(ids) / (answered - start),
            "statuses": dict(statuses),
            "requests_by_replica": dict(by_replica),
            "request_ms": summary(request_ms),
            "late_ms": summary(late_ms),
            "all_delivered_s": (all_delivered - start) if all_delivered else None,
            "missing_delivered": self.delivered.missing(delivered_ids),
            "intake_to_delivered_ms": summary(latencies_ms(delivered_ids, self.intake, self.delivered)),
            "cpu": cpu,
            "broker_batches": appended,
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
    parser.add_argument(
        "--http-rates",
        default="",
        help="then HTTP at these steady rates, signals/s, comma-separated (e.g. 50,150; each at most"
        f" {MAX_RATE})",
    )
    parser.add_argument("--http-seconds", type=float, default=6.0, help="seconds per --http-rates rate")
    parser.add_argument(
        "--rate-limit",
        default="100000/minute",
        help="SC_RATE_LIMIT of the services: raised, so that one credential can send the rates",
    )
    parser.add_argument("--denied-every", type=int, default=4, help="every n-th signal is radicalisering")
    parser.add_argument(
        "--subjects", type=int, default=500, help="distinct subjects (BSNs) the signals cycle over"
    )
    parser.add_argument("--warmup", type=int, default=200, help="signals through the chain first (1..2000)")
    parser.add_argument("--max-batch", type=int, help="SC_MAX_BATCH for signals and consent (default 100)")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help=f"replicas of each service (1..{MAX_REPLICAS}; audit: a leader and standbys); more than"
        " one puts signals' and audit's stores in a local PostgreSQL",
    )
    parser.add_argument(
        "--relay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the anchor, a two-hop transactional relay of --signals records",
    )
    parser.add_argument("--relay-linger-ms", type=int, default=0, help="the relay producers' linger.ms")
    parser.add_argument(
        "--audit-timeout", type=float, default=300.0, help="seconds to wait for the audit log, per phase"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole measurement")
    parser.add_argument("--micro-json", type=Path, help="bench.micro's --json: the compute floor per signal")
    parser.add_argument(
        "--ingest-json", type=Path, help="bench.audit_ingest's --json: its figure in the goals table"
    )
    parser.add_argument(
        "--verify-json", type=Path, help="bench.audit_verify's --json: its figures in the goals table"
    )
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
    args.http_rates = [max(1.0, min(float(r), MAX_RATE)) for r in args.http_rates.split(",") if r.strip()]
    args.http_seconds = max(1.0, min(args.http_seconds, 60.0))
    args.warmup = max(1, min(args.warmup, 2000))
    args.replicas = max(1, min(args.replicas, MAX_REPLICAS))
    args.subjects = max(1, min(args.subjects, 10_000))
    args.relay_linger_ms = max(0, min(args.relay_linger_ms, 1000))
    args.audit_timeout = max(10.0, min(args.audit_timeout, 3600.0))
    args.timeout = max(10.0, min(args.timeout, 3600.0))
    console = make_console()
    extra_env = {"SC_RATE_LIMIT": args.rate_limit}
    if args.max_batch:
        extra_env["SC_MAX_BATCH"] = str(args.max_batch)
    if args.sample:
        args.sample = args.sample.resolve()
        args.sample.mkdir(parents=True, exist_ok=True)
        python_path = [str(PROJECT_ROOT / "bench" / "sampler"), os.environ.get("PYTHONPATH", "")]
        extra_env["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
        extra_env["SC_BENCH_SAMPLE_DIR"] = str(args.sample)

    with running_stack(console, "throughput", extra_env, args.keep_logs, args.replicas) as running:
        bench = Bench(running, args, console, time.monotonic() + args.timeout, bsns(args.subjects))
        results = asyncio.run(asyncio.wait_for(bench.run(), args.timeout + 60))
        results["startup_restarts"] = running.restarts
        results["broker"] = "local (started here)" if running.broker else "KAFKA_BOOTSTRAP_SERVERS"
        results["replicas"] = {
            service: running.replicas_of(service) for service in ("signals", "consent", "audit")
        }
        results["stores"] = running.stores
        results["audit_lease_holder"] = bench.lease_holder
    micro, ingest, verify = (
        goals.load(path) for path in (args.micro_json, args.ingest_json, args.verify_json)
    )
    kafka = results["kafka"]
    appended = kafka["broker_batches"] or {}
    records_per_signal = {topic: counts["records"] / kafka["signals"] for topic, counts in appended.items()}
    kafka["compute_floor"] = goals.floors(
        micro, goals.per_signal_counts(records_per_signal, kafka["audit"]["facts_per_signal"])
    )
    results["goals"] = [row.as_dict() for row in goals.goal_rows(results, ingest, verify)]
    results["inputs"] = {
        "micro_json": micro is not None,
        "ingest_json": ingest is not None,
        "verify_json": verify is not None,
    }
    report(console, args, results)


def report(console: Console, args: argparse.Namespace, results: dict[str, Any]) -> None:
    kafka = results["kafka"]
    audit = kafka["audit"]
    rows = [
        ["replicas of each service", _replicas(results)],
        ["stores (signals, audit)", results["stores"]],
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
        ["the audit log holds every fact", _rate(audit["all_held_s"], kafka["signals"])],
        ["  facts, per second", _rate(audit["all_held_s"], audit["facts_expected"])],
        ["  facts per signal", _facts_per_signal(audit)],
        ["  after the last delivery", seconds(audit["after_last_delivery_s"])],
    ]
    if "http" in results:
        http = results["http"]
        rows += [
            [f"HTTP POSTs ({http['clients']} clients)", f"{http['signals']}"],
            ["  answered", f"{http['requests_s']:.2f} s = {http['requests_per_s']:,.0f}/s"],
            ["  statuses", ", ".join(f"{k}: {v}" for k, v in sorted(http["statuses"].items()))],
            ["  requests per signals replica", _by_replica(http["requests_by_replica"])],
            ["  all permitted delivered", _rate(http["all_delivered_s"], http["to_deliver"])],
            ["  the audit log holds every fact", _rate(http["audit"]["all_held_s"], http["signals"])],
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
            ("intake ce_time -> all its facts logged", "intake_to_logged_ms"),
        )
    ]
    if "http" in results:
        http = results["http"]
        latency_rows += [
            ["http: request (client side)", *_percentiles(http["request_ms"])],
            ["http: intake ce_time -> accepted ce_time", *_percentiles(http["intake_to_accepted_ms"])],
            ["http: intake ce_time -> delivered_at", *_percentiles(http["intake_to_delivered_ms"])],
            ["http: intake ce_time -> all its facts logged", *_percentiles(http["intake_to_logged_ms"])],
        ]
    for paced in results["paced"]:
        at = f"http at {paced['rate']:g}/s"
        latency_rows += [
            [f"{at}: request, from when due", *_percentiles(paced["request_ms"])],
            [f"{at}: intake ce_time -> delivered_at", *_percentiles(paced["intake_to_delivered_ms"])],
        ]
    print_table(console, "latency per signal (ms)", ["", "n", "p50", "p95", "p99", "max"], latency_rows)

    phases = [("kafka", kafka["cpu"])] + ([("http", results["http"]["cpu"])] if "http" in results else [])
    phases += [(f"http {p['rate']:g}/s", p["cpu"]) for p in results["paced"]]
    names = sorted({name for _, cpu in phases for name in cpu})
    print_table(
        console,
        "CPU until delivered (% of one core; the machine has " + str(os.cpu_count()) + ")",
        ["process", *(phase for phase, _ in phases)],
        [
            [
                _process(name, results),
                *(f"{cpu[name]['core_pct']:.0f}%" if name in cpu else "-" for _, cpu in phases),
            ]
            for name in names
        ],
    )
    whole, floor = kafka["cpu_whole_path"], kafka["compute_floor"]
    print_table(
        console,
        "CPU per signal, kafka phase, first publish until the audit log holds all (ms; a service's"
        " replicas summed, then each)",
        ["process", "CPU/signal", "% of a core", "floor (bench.micro)", "CPU / floor", "floor: what it sums"],
        [
            [
                _process(name, results),
                f"{used['ms_per_signal']:.2f}",
                f"{used['core_pct']:.0f}%",
                f"{floor[name]['floor_s'] * 1e3:.3f}" if name in floor else "-",
                f"{used['ms_per_signal'] / (floor[name]['floor_s'] * 1e3):.1f}x" if name in floor else "-",
                floor[name]["recipe"] if name in floor else "",
            ]
            for name, used in whole.items()
        ],
    )
    if kafka["broker_batches"] is not None:
        print_table(
            console,
            "broker: record batches appended in the kafka phase (until logged), per signal",
            brokerlog.batch_columns("signal"),
            brokerlog.batch_rows(kafka["broker_batches"]),
        )
    for paced in results.get("paced", []):
        if paced.get("broker_batches") is not None:
            print_table(
                console,
                f"broker: record batches appended at {paced['rate']:g} HTTP signals/s, per signal",
                brokerlog.batch_columns("signal"),
                brokerlog.batch_rows(paced["broker_batches"]),
            )
    if "relay" in results:
        _report_relay(console, results)
    print_table(
        console,
        "issue 20's goals: this run beside them",
        ["goal", "target", "this run", "met", "anchor"],
        [[r["goal"], r["target"], r["figure"], r["met"], r["anchor"]] for r in results["goals"]],
        left=5,
    )
    console.print(load_note())
    write_results(console, args.json, "throughput", {"arguments": vars(args), **results})


def _report_relay(console: Console, results: dict[str, Any]) -> None:
    relay_run, kafka = results["relay"], results["kafka"]
    chain = kafka["audit"]["signals_per_s"]
    delivered = kafka["signals"] / kafka["all_delivered_s"] if kafka["all_delivered_s"] else None
    rate, records = relay_run["records_per_s"], relay_run["records"]
    rows = [
        ["records (a copy of an intake record each)", f"{records} x {relay_run['record_bytes']:,.0f} B"],
        ["produce into relay.in", f"{relay_run['produce_s']:.2f} s"],
        ["all on relay.out (two transactional hops)", _rate(relay_run["all_relayed_s"], records)],
        ["records per transaction", number(relay_run["records_per_transaction"], "{:.1f}")],
        ["hop CPU per record (both hops)", number(relay_run["hop_cpu_ms_per_record"], "{:.3f} ms")],
        ["broker CPU per record", number(relay_run["broker_cpu_ms_per_record"], "{:.3f} ms")],
        ["chain / relay: signals/s until logged", _ratio(chain, rate)],
        ["chain / relay: signals/s until delivered", _ratio(delivered, rate)],
    ]
    print_table(console, "anchor: transactional two-hop aiokafka relay, same broker", ["", ""], rows)
    if relay_run["broker_batches"] is not None:
        print_table(
            console,
            "broker: record batches appended by the relay, per record",
            brokerlog.batch_columns("record"),
            brokerlog.batch_rows(relay_run["broker_batches"]),
        )


def _replicas(results: dict[str, Any]) -> str:
    replicas = results["replicas"]
    counts = ", ".join(f"{service} {len(names)}" for service, names in replicas.items())
    if len(replicas.get("audit", [])) > 1:
        holder = results.get("audit_lease_holder")
        counts += f" (audit: leader {holder if holder is not None else 'unknown'}, the rest standbys)"
    return counts


def _process(name: str, results: dict[str, Any]) -> str:
    """A process's row label: a replica's indented under its service's sum, audit's leader named."""
    if not is_replica(name):
        return name
    instance = name.rsplit("/", 1)[1]
    leader = name.startswith("services.audit/") and instance == results.get("audit_lease_holder")
    return f"  replica {instance}" + (" (leader)" if leader else "")


def _by_replica(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.items())


def _ratio(value: float | None, anchor: float | None) -> str:
    return f"{value / anchor:.3f}" if value and anchor else "-"


def _facts_per_signal(audit: dict[str, Any]) -> str:
    total = audit["facts_per_signal"]
    if total is None:
        return "-"
    kinds = ", ".join(f"{kind} {n:.2f}" for kind, n in audit["facts_per_signal_by_type"].items())
    return f"{total:.2f} ({kinds})"


def _rate(seconds: float | None, count: int) -> str:
    return f"{seconds:.2f} s = {count / seconds:,.0f}/s" if seconds else "did not complete in time"


def _percentiles(stats: dict[str, float]) -> list[str]:
    return [f"{stats['n']:.0f}", *(f"{stats[k]:.0f}" for k in ("p50", "p95", "p99", "max"))]


if __name__ == "__main__":
    main()
