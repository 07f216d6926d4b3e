"""What the benchmarks on a real broker share: the broker and the three services (one replica
each, or N with their stores in PostgreSQL), the publisher, the delivery ids of the bench's
signals, and CPU time per process."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bench.common import CONFIG_DIR
from devstack.kafka import KafkaAccess, LocalKafka
from devstack.postgres import LocalPostgres
from publisher import IntakePublisher
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.pseudonyms import delivery_id
from shared.contracts.registry import Registry
from tests.e2e.stack import Stack

# -- the broker and the services ---------------------------------------------------------------

SERVICES = ("signals", "consent", "audit")


@dataclass
class Running:
    stack: Stack
    broker: LocalKafka | None  # None: KAFKA_BOOTSTRAP_SERVERS named a broker of someone else's
    restarts: list[str]
    replicas: int = 1  # of each service
    postgres: LocalPostgres | None = None  # the stores' server, with more than one replica

    @property
    def stores(self) -> str:
        return "PostgreSQL (local, started here)" if self.postgres is not None else "SQLite"

    def replicas_of(self, service: str) -> list[str]:
        """The names in stack.services of `service`'s replicas, replica 0 first."""
        return [name for name, process in self.stack.services.items() if (process.service or name) == service]

    @property
    def log_dir(self) -> Path | None:
        """The broker's log.dirs folder, when this process started the broker."""
        return self.broker.data_dir / "data" if self.broker is not None else None


@contextlib.contextmanager
def running_stack(
    console: Console,
    name: str,
    extra_env: dict[str, str],
    keep_logs: Path | None = None,
    replicas: int = 1,
) -> Iterator[Running]:
    """A local broker in a temp folder (or KAFKA_BOOTSTRAP_SERVERS') and the three services
    as tests.e2e.stack.Stack starts them, under a fresh topic prefix; all stopped at the end.
    With `replicas` > 1: that many of each (audit: a leader and standbys), and signals' and
    audit's stores in a PostgreSQL server started in the same temp folder (one replica keeps
    SQLite, so its figures compare with earlier runs)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        broker: LocalKafka | None = None
        postgres: LocalPostgres | None = None
        stack: Stack | None = None
        try:
            existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if existing:
                kafka = KafkaAccess(existing)
            else:
                console.print("starting a local Kafka broker")
                broker = LocalKafka(Path(tmp) / "kafka").start()
                kafka = broker.access
            if replicas > 1:
                console.print("starting a local PostgreSQL for signals' and audit's stores")
                postgres = LocalPostgres(Path(tmp) / "postgres").start()
                track_process_tree("postgresql", postgres.data_dir / "pgdata" / "postmaster.pid")
            console.print(
                f"starting signals, consent and audit ({replicas} of each) against {kafka.bootstrap_servers}"
            )
            stack = Stack(
                kafka,
                f"bench{uuid.uuid4().hex[:8]}.",
                Path(tmp) / "stack",
                extra_env,
                replicas=dict.fromkeys(SERVICES, replicas),
                database_url=postgres.url if postgres is not None else None,
            )
            started = time.monotonic()
            restarts = start_stack(stack, console)
            console.print(f"services ready in {time.monotonic() - started:.1f}s")
            yield Running(stack, broker, restarts, replicas, postgres)
        finally:
            if stack is not None:
                stack.stop()
                if keep_logs:
                    shutil.copytree(stack.workdir / "logs", keep_logs, dirs_exist_ok=True)
            _TREES.clear()
            _BENCH_BACKENDS.clear()
            _BACKEND_SECONDS.clear()
            if postgres is not None:
                postgres.stop()
            if broker is not None:
                broker.stop()


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


def publisher(stack: Stack) -> IntakePublisher:
    """gm0363's Kafka intake publisher, with the stack's development keys."""
    keys = KeyRing(stack.keys_dir, generate_missing=True)
    return IntakePublisher(
        "gm0363",
        keys.ed25519_private("gm0363"),
        keys.x25519_public("signals"),
        stack.kafka_options("gm0363"),
        stack.prefix,
    )


def delivery_ids(
    stack: Stack, signal_ids: Iterable[str], partners: Iterable[str] | None = None
) -> dict[str, str]:
    """Every partner's delivery id of each signal -> the signal id (a delivery names only
    its partner's own id; the bench holds the platform's key that derives them)."""
    key = KeyRing(stack.keys_dir, generate_missing=True).secret("partner-pseudonyms")
    ids = list(signal_ids)
    return {
        str(delivery_id(key, partner, signal_id)): signal_id
        for partner in (partners if partners is not None else Registry.load(CONFIG_DIR).partner_ids)
        for signal_id in ids
    }


# -- CPU time per process ---------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, str]:
    """This process's child processes, named by what they run (not multiprocessing's
    resource tracker: a helper of the relay's, idle)."""
    names: dict[int, str] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                words = [w.decode(errors="replace") for w in cmdline if w]
                if (name := _name(words)) != "multiprocessing helper":
                    names[int(pid)] = name
    return names


def _name(words: list[str]) -> str:
    service = next((w for w in words if w.startswith("services.")), None)
    if service:
        return service
    if "kafka.Kafka" in words:
        return "kafka broker"
    code = words[words.index("-c") + 1] if "-c" in words[:-1] else ""
    if "multiprocessing" in code:  # the relay's hops (spawned), and spawn's resource tracker
        return "relay hops" if "spawn_main" in code else "multiprocessing helper"
    return " ".join(words[:2])


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float | None:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else None  # utime + stime


def _replica(pid: int) -> str | None:
    """A service replica's instance id (SC_INSTANCE_ID) when it runs as one of several."""
    try:
        environ = dict(
            entry.split(b"=", 1)
            for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if b"=" in entry
        )
    except OSError:
        return None
    if int(environ.get(b"SC_REPLICAS", b"1") or 1) <= 1:
        return None
    return environ.get(b"SC_INSTANCE_ID", b"?").decode(errors="replace")


# Process trees that are not this process's children, by name: the pid file of their root.
# PostgreSQL's postmaster detaches from pg_ctl, and its backends (one per pooled connection of
# the services) are its children.
_TREES: dict[str, Path] = {}


# Processes in those trees that work for this process (the PostgreSQL backend of the audit
# store's watch): counted apart, under BENCH_BACKENDS, not as the tree's.
_BENCH_BACKENDS: set[int] = set()
_BACKEND_SECONDS: dict[int, float] = {}
BENCH_BACKENDS = "bench's store reads (postgresql)"


def track_process_tree(name: str, pid_file: Path) -> None:
    """Count the CPU of the process whose pid is the first line of `pid_file` and of all its
    descendants (the exited ones too, once waited for) under `name` in every cpu_sample."""
    _TREES[name] = pid_file


def count_apart(pid: int) -> None:
    """Count the CPU of `pid`, a process in a tracked tree that serves this process (e.g. the
    PostgreSQL backend of the benchmark's own reads), under BENCH_BACKENDS instead."""
    _BENCH_BACKENDS.add(pid)


def _tree_cpu_seconds(pid_file: Path) -> float | None:
    try:
        root = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        fields = _stat(pid)
        if fields is None or pid in _BENCH_BACKENDS:
            continue
        # utime + stime, and cutime + cstime: the descendants that exited and were waited for
        total += sum(int(f) for f in fields[11:15]) / _TICKS
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def replica_name(name: str, instance: str) -> str:
    """The name under which cpu_sample counts one replica of the service process `name`
    (the service's own name holds the sum of its replicas)."""
    return f"{name}/{instance}"


def is_replica(name: str) -> bool:
    return "/" in name


def cpu_sample() -> dict[str, float]:
    """CPU seconds used so far by each child process and by this one; of a service with
    several replicas, the sum under the service's name and each replica under
    replica_name(service, its SC_INSTANCE_ID); of each tracked process tree, its sum."""
    sample: dict[str, float] = {}
    for pid, name in _children().items():
        if (seconds := _cpu_seconds(pid)) is not None:
            sample[name] = sample.get(name, 0.0) + seconds  # processes of one name together
            if name.startswith("services.") and (instance := _replica(pid)) is not None:
                key = replica_name(name, instance)
                sample[key] = sample.get(key, 0.0) + seconds
    for name, pid_file in _TREES.items():
        if (seconds := _tree_cpu_seconds(pid_file)) is not None:
            sample[name] = seconds
    if _TREES:
        # the bench's backends, alive or not: one that ended keeps its last figure
        for pid in _BENCH_BACKENDS:
            if (seconds := _cpu_seconds(pid)) is not None:
                _BACKEND_SECONDS[pid] = seconds
        sample[BENCH_BACKENDS] = sum(_BACKEND_SECONDS.values())
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


def service_pids() -> list[int]:
    return [pid for pid, name in _children().items() if name.startswith("services.")]
