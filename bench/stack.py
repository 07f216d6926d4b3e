"""What the benchmarks on a real broker share: the broker and the three services, the
publisher, the delivery ids of the bench's signals, and CPU time per process."""

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
from publisher import IntakePublisher
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.pseudonyms import delivery_id
from shared.contracts.registry import Registry
from tests.e2e.stack import Stack

# -- the broker and the services ---------------------------------------------------------------


@dataclass
class Running:
    stack: Stack
    broker: LocalKafka | None  # None: KAFKA_BOOTSTRAP_SERVERS named a broker of someone else's
    restarts: list[str]

    @property
    def log_dir(self) -> Path | None:
        """The broker's log.dirs folder, when this process started the broker."""
        return self.broker.data_dir / "data" if self.broker is not None else None


@contextlib.contextmanager
def running_stack(
    console: Console, name: str, extra_env: dict[str, str], keep_logs: Path | None = None
) -> Iterator[Running]:
    """A local broker in a temp folder (or KAFKA_BOOTSTRAP_SERVERS') and the three services
    as tests.e2e.stack.Stack starts them, under a fresh topic prefix; all stopped at the end."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
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
            yield Running(stack, broker, restarts)
        finally:
            if stack is not None:
                stack.stop()
                if keep_logs:
                    shutil.copytree(stack.workdir / "logs", keep_logs, dirs_exist_ok=True)
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


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def cpu_sample() -> dict[str, float]:
    """CPU seconds used so far by each child process and by this one."""
    sample: dict[str, float] = {}
    for pid, name in _children().items():
        if (seconds := _cpu_seconds(pid)) is not None:
            sample[name] = sample.get(name, 0.0) + seconds  # processes of one name together
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
