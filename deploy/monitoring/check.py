"""Check the dashboard's and the alert rules' queries: every metric they name exists, and
Prometheus' own parser accepts every rule and query.

    python -m deploy.monitoring.check      # exit 1 and say what is wrong

Two independent checks, both run by tests/deploy/test_monitoring.py:

  metric names   each PromQL expression's identifiers, with strings, label matchers, grouping
                 labels, ranges and numbers taken out, are function names (FUNCTIONS) or metric
                 names, which must be in shared.plumbing.metrics.metric_names() or in EXTERNAL_METRICS
                 (the exporters' series the rules and dashboard use, each with where it comes from)
  Prometheus     promcheck (promcheck/main.go) runs what `promtool check rules` runs,
                 rulefmt.ParseFile from the Prometheus module pinned in promcheck/go.mod, on the
                 rule file, and Prometheus' PromQL parser on every dashboard query. It is built
                 once into .cache/monitoring/ with the machine's Go from the Go module proxy
                 (go.sum pins every module's hash; the checksum database is consulted as usual),
                 in about a minute and a half; promtool itself links every service discovery
                 and takes 4 to 7 minutes to build here, too slow for a test's set-up.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.monitoring.generate import DASHBOARD_FILE, MONITORING_DIR, PROMETHEUS_RULE_FILE, RULES_FILE
from deploy.tool_cache import SetupError as SetupError  # promcheck could not be built
from deploy.tool_cache import go_build_env, locked, require_go
from shared.plumbing.metrics import metric_names

REPO_ROOT: Final = MONITORING_DIR.parents[1]
PROMCHECK_DIR: Final = MONITORING_DIR / "promcheck"
CACHE_DIR: Final = REPO_ROOT / ".cache" / "monitoring"

EXTERNAL_METRICS: Final = {
    # Prometheus itself: one series per scrape target, 1 when the last scrape succeeded
    "up": "Prometheus",
    # kube-state-metrics: the StatefulSets and pods of signals, consent and audit
    "kube_statefulset_status_replicas_ready": "kube-state-metrics",
    "kube_statefulset_replicas": "kube-state-metrics",
    "kube_pod_status_ready": "kube-state-metrics",
    # Strimzi's Kafka Exporter (spec.kafkaExporter of the Kafka resource, deploy/k8s/base/kafka.yaml)
    "kafka_consumergroup_lag": "Kafka Exporter",
    "kafka_topic_partition_current_offset": "Kafka Exporter",
    # The Kafka nodes' JMX exporter, by the rules of deploy/k8s/base/kafka-metrics.yaml
    "kafka_server_replicamanager_underreplicatedpartitions": "Kafka JMX exporter",
    "kafka_server_replicamanager_underminisrpartitioncount": "Kafka JMX exporter",
    # cert-manager's controller: each Certificate's notAfter
    "certmanager_certificate_expiration_timestamp_seconds": "cert-manager",
    # Strimzi's Cluster Operator: notAfter of the cluster and clients CAs it manages (milliseconds)
    "strimzi_certificate_expiration_timestamp_ms": "Strimzi Cluster Operator",
}
"""Series from outside this project that the rules and the dashboard may use, by their source."""

AGGREGATIONS: Final = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk"}
    | {"quantile", "count_values", "limitk", "limit_ratio"}
)
FUNCTIONS: Final = AGGREGATIONS | {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count_over_time", "delta", "deriv", "floor", "histogram_quantile", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "max_over_time",
    "min_over_time", "predict_linear", "present_over_time", "quantile_over_time", "rate", "resets",
    "round", "scalar", "sort", "sort_desc", "sum_over_time", "time", "timestamp", "vector",
}  # fmt: skip
"""The PromQL functions and aggregations a query here may call (a small allowlist: any other
identifier followed by `(` is reported, as a metric name would be)."""
KEYWORDS: Final = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
"""Binary operators and other keywords that are no metric (compared case-insensitively)."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z_$]+", re.IGNORECASE)
_TOKEN = re.compile(
    r"(?P<number>0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<call>\s*\()?"
)


@dataclass(frozen=True)
class Names:
    """What one expression names: metrics, and functions it calls."""

    metrics: frozenset[str]
    functions: frozenset[str]


def names_in(expr: str) -> Names:
    """The metric names and function names of a PromQL expression (Grafana variables allowed)."""
    text = _STRING.sub(" ", expr)
    text = _RANGE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    metrics: set[str] = set()
    functions: set[str] = set()
    for token in _TOKEN.finditer(text):
        name = token.group("name")
        if name is None or name.lower() in KEYWORDS:
            continue
        if token.group("call"):
            functions.add(name)
        else:
            metrics.add(name)
    return Names(frozenset(metrics), frozenset(functions))


def known_metrics() -> frozenset[str]:
    return frozenset(metric_names()) | frozenset(EXTERNAL_METRICS)


def problems_in(expr: str, known: Iterable[str] | None = None) -> list[str]:
    """What is wrong with the names of one expression: unknown metrics, unknown functions."""
    allowed = known_metrics() if known is None else frozenset(known)
    found = names_in(expr)
    return [f"unknown metric {name}" for name in sorted(found.metrics - allowed)] + [
        f"function {name} is not in the allowlist" for name in sorted(found.functions - FUNCTIONS)
    ]


# --- the files' expressions -------------------------------------------------------------------

_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<expr>.+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$")


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return loaded


def load_rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return loaded


def load_prometheus_rule() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_RULE_FILE.read_text(encoding="utf-8"))
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every PromQL expression of the dashboard, by where it is: panel queries and the metric
    selector of each `label_values(...)` variable query."""
    exprs: dict[str, str] = {}
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            exprs[f"panel {panel['title']!r} query {target['refId']}"] = target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and isinstance(text, str):
            match = _LABEL_VALUES.match(text)
            exprs[f"variable {variable['name']!r}"] = match.group("expr") if match else text
    return exprs


def rule_exprs(rules: dict[str, Any]) -> dict[str, str]:
    return {
        f"rule {rule.get('alert') or rule.get('record')!r}": str(rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    }


GRAFANA_VARIABLES: Final = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
"""Grafana's interval variables, as Prometheus sees them once Grafana has put in a value."""


def as_prometheus_sees_it(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def name_problems() -> list[str]:
    known = known_metrics()
    exprs = {**dashboard_exprs(load_dashboard()), **rule_exprs(load_rules())}
    return [f"{where}: {problem}" for where, expr in exprs.items() for problem in problems_in(expr, known)]


# --- promcheck: Prometheus' own parser --------------------------------------------------------


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update(name.encode() + b"\0" + (PROMCHECK_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def promcheck() -> Path:
    """The promcheck binary of promcheck/'s sources, built once into .cache/monitoring/bin."""
    binary = CACHE_DIR / "bin" / "promcheck"
    stamp = CACHE_DIR / "bin" / "promcheck.sha256"
    digest = _sources_digest()
    with locked(CACHE_DIR):
        if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
            return binary
        binary.parent.mkdir(parents=True, exist_ok=True)
        go = require_go("to build promcheck")
        # -mod=readonly: the modules go.sum pins, as committed
        with go_build_env(CACHE_DIR, GOFLAGS="-mod=readonly -modcacherw") as env:
            result = subprocess.run(
                [go, "build", "-trimpath", "-o", str(binary), "."],
                cwd=PROMCHECK_DIR,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise SetupError(f"building promcheck failed ({result.returncode}):\n{result.stderr}")
        stamp.write_text(digest + "\n")
        return binary


def check_rule_files(*files: Path) -> tuple[bool, str]:
    """`promcheck rules`: (passed, what it said)."""
    result = subprocess.run(
        [str(promcheck()), "rules", *map(str, files)], capture_output=True, text=True, check=False
    )
    return result.returncode == 0, result.stdout + result.stderr


@dataclass(frozen=True)
class Parsed:
    error: str | None
    metrics: frozenset[str]


def parse_exprs(exprs: list[str]) -> list[Parsed]:
    """Prometheus' parser on each expression: its error, or the metric names its selectors use."""
    result = subprocess.run(
        [str(promcheck()), "exprs"], input=json.dumps(exprs), capture_output=True, text=True, check=True
    )
    return [Parsed(item.get("error"), frozenset(item["metrics"])) for item in json.loads(result.stdout)]


def prometheus_functions() -> frozenset[str]:
    result = subprocess.run([str(promcheck()), "functions"], capture_output=True, text=True, check=True)
    return frozenset(json.loads(result.stdout))


def prometheus_problems() -> list[str]:
    passed, said = check_rule_files(RULES_FILE)
    problems = [] if passed else [f"{RULES_FILE.name}: {said.strip()}"]
    exprs = dashboard_exprs(load_dashboard())
    parsed = parse_exprs([as_prometheus_sees_it(expr) for expr in exprs.values()])
    problems += [f"{where}: {p.error}" for where, p in zip(exprs, parsed, strict=True) if p.error]
    return problems


def main() -> int:
    problems = name_problems() + prometheus_problems()
    for problem in problems:
        print(problem)
    if not problems:
        print("dashboard and rules: every metric known, every rule and query parses")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
