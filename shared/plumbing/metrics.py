"""What every service tells Prometheus at `/metrics`: one place that names every metric.

Labels carry only what an operator may see: a processor's name, a topic, an outcome, a reason
code, an organisation id. Never a pseudonym, a signal id, a delivery id or a correlation id:
those would put personal data (and unbounded cardinality) into the monitoring system.

Counts of what a transaction wrote hold only once it committed (`Tally`): an aborted batch is
read again, and counting it twice would show work that never happened.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from shared.plumbing.tracing import span

P = ParamSpec("P")
R = TypeVar("R")
PREFIX: Final = "safetychain"

# The transactional loops (signals' intake, consent's decisions): shared/plumbing/transactional.py
BATCHES = Counter(
    f"{PREFIX}_batches", "Batches of the processing loop, by outcome.", ["processor", "outcome"]
)
BATCH_RECORDS = Histogram(
    f"{PREFIX}_batch_records",
    "Records per committed batch.",
    ["processor"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
BATCH_SECONDS = Histogram(
    f"{PREFIX}_batch_seconds",
    "Seconds from reading a batch to its commit (or abort).",
    ["processor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FAILURES_IN_A_ROW = Gauge(
    f"{PREFIX}_failures_in_a_row", "Batches that failed since the last one that committed.", ["processor"]
)
LAST_COMMIT = Gauge(
    f"{PREFIX}_last_commit_timestamp_seconds", "When the loop last committed a transaction.", ["processor"]
)
SINCE_COMMIT = Gauge(
    f"{PREFIX}_seconds_since_last_commit",
    "Seconds since the loop last committed (since it started, before its first commit).",
    ["processor"],
)
DEAD_LETTERED = Counter(
    f"{PREFIX}_dead_lettered_records", "Records the loop dead-lettered after repeated failure.", ["processor"]
)
CONSUMER_LAG = Gauge(
    f"{PREFIX}_consumer_lag_records",
    "Records between a consumer's position and the end of the topic (last stable offset), summed"
    " over its partitions.",
    ["consumer", "topic"],
)

# What the exchange did (counted after commit)
SIGNALS = Counter(
    f"{PREFIX}_signals", "Signals decided at intake, by outcome and rejection reason.", ["outcome", "reason"]
)
DECISIONS = Counter(f"{PREFIX}_decisions", "Consent's decisions per recipient, by outcome.", ["outcome"])
DELIVERIES = Counter(f"{PREFIX}_deliveries", "Signals delivered, per partner.", ["partner"])
RECEIPTS = Counter(
    f"{PREFIX}_receipts",
    "Partners' receipts the audit log took in, per partner and status.",
    ["partner", "status"],
)
ERASURE_NOTICES = Counter(f"{PREFIX}_erasure_notices", "Erasure notices sent, per partner.", ["partner"])

# The audit log
AUDIT_APPENDS = Counter(
    f"{PREFIX}_audit_appends", "Facts the audit log took in, by what they were.", ["kind"]
)
AUDIT_APPEND_SECONDS = Histogram(
    f"{PREFIX}_audit_append_seconds", "Seconds to append one fact to the audit store.", []
)
AUDIT_CHECKPOINTS = Counter(f"{PREFIX}_audit_checkpoints", "Checkpoints the audit log issued.", [])
AUDIT_LOG_SIZE = Gauge(f"{PREFIX}_audit_log_records", "Records in the audit log.", [])
AUDIT_SEQUENCER_EPOCH = Gauge(
    f"{PREFIX}_audit_sequencer_epoch",
    "The lease epoch this audit replica writes the log under; 0 while it stands by (one replica"
    " of a deployment leads: the sum over replicas above 0 is the leader's epoch).",
    [],
)
AUDIT_VERIFICATIONS = Counter(
    f"{PREFIX}_audit_verifications",
    "Verifications of the audit log that ran (concurrent requests share one), by kind (full,"
    " incremental) and outcome (intact, failed).",
    ["kind", "outcome"],
)
AUDIT_VERIFIED_RECORDS = Counter(
    f"{PREFIX}_audit_verified_records",
    "Records verification read from the store (an incremental run reads only those appended"
    " since the last verified tree head).",
    [],
)

# HTTP
UNAUTHENTICATED = Counter(
    f"{PREFIX}_http_unauthenticated",
    "Requests refused for want of a valid credential (401, or a console session that ended), by"
    " surface (api, console). Every one is counted here; the log records them per client address"
    " at most once a minute, with a count.",
    ["surface"],
)

# Stores
STORE_SECONDS = Histogram(
    f"{PREFIX}_store_seconds",
    "Seconds per store operation.",
    ["store", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

# Compacted state views (consent's agreements, directives, recipients, data keys)
STATE_VIEW_LAG = Gauge(
    f"{PREFIX}_state_view_lag_records",
    "Records of a compacted state topic not yet read into its view.",
    ["view"],
)


def timed(store: str, operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Observe each call's duration as STORE_SECONDS{store, operation}, in a span of its own."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        child = STORE_SECONDS.labels(store, operation)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with child.time(), span(f"{store}.{operation}", attributes={"db.operation.name": operation}):
                return function(*args, **kwargs)

        return wrapper

    return decorate


class Tally:
    """Counts that hold only once their transaction commits."""

    def __init__(self) -> None:
        self._pending: list[tuple[Counter, float]] = []

    def add(self, counter: Counter, amount: float = 1.0) -> None:
        """`counter`: a labelled child, e.g. DELIVERIES.labels(partner)."""
        if amount:
            self._pending.append((counter, amount))

    def commit(self) -> None:
        for counter, amount in self._pending:
            counter.inc(amount)
        self._pending.clear()

    def abort(self) -> None:
        self._pending.clear()


class CommitClock:
    """The loop's last commit, for `seconds since the last commit` (started: the first one)."""

    def __init__(self, processor: str) -> None:
        self._last = time.time()
        self._processor = processor
        SINCE_COMMIT.labels(processor).set_function(lambda: time.time() - self._last)

    def committed(self) -> None:
        self._last = time.time()
        LAST_COMMIT.labels(self._processor).set(self._last)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric of this process, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def metric_names() -> set[str]:
    """The name of every series this module defines (counters with _total, histograms with
    _bucket/_sum/_count): what dashboards and alert rules may refer to."""
    names: set[str] = set()
    for metric in (value for value in globals().values() if isinstance(value, MetricWrapperBase)):
        for family in metric.describe():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
