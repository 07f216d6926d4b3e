"""Generate the monitoring files that follow from a source of truth.

    python -m deploy.monitoring.generate           # (re)write the generated files
    python -m deploy.monitoring.generate --check   # exit 1 if any of them is stale (CI)

Outputs, under deploy/monitoring/:
  grafana/safety-chain.json           the Grafana dashboard (JSON model), from DASHBOARD below
  prometheus/prometheusrule.yaml      the alert rules of prometheus/safety-chain.rules.yaml (the
                                      source: edit that one) as a PrometheusRule for the
                                      Prometheus Operator

Every query names metrics of shared/plumbing/metrics.py or of the exporters listed in check.py;
tests/deploy/test_monitoring.py holds both files to that, and to what Prometheus' parser
accepts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.plumbing.generated_files import Generator

MONITORING_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = MONITORING_DIR.parents[1]
DASHBOARD_FILE: Final = MONITORING_DIR / "grafana" / "safety-chain.json"
RULES_FILE: Final = MONITORING_DIR / "prometheus" / "safety-chain.rules.yaml"
PROMETHEUS_RULE_FILE: Final = MONITORING_DIR / "prometheus" / "prometheusrule.yaml"

DASHBOARD_UID: Final = "safety-chain-exchange"
SCHEMA_VERSION: Final = 39
"""Grafana 11's dashboard JSON model; later Grafana versions migrate it on load."""
DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel and query: the data source the viewer picks, never a fixed uid."""
SERVICE_JOBS: Final = "signals|consent|audit"
"""The scrape jobs of the three services (the ServiceMonitor's job label is the Service name)."""
NAMESPACE: Final = 'namespace=~"$namespace"'
"""Every selector's namespace matcher: the dashboard variable; "All" is `.*`, which also matches
series without a namespace label (a Prometheus outside Kubernetes, as with `make run`)."""
RATE: Final = "$__rate_interval"
REJECTED: Final = 'outcome="rejected"'
ABORTED: Final = 'outcome="aborted"'
DENIED: Final = 'outcome="deny"'


def sel(metric: str, *matchers: str) -> str:
    """`metric{namespace=~"$namespace", matchers...}`."""
    return f"{metric}{{{', '.join((NAMESPACE, *matchers))}}}"


def rate(metric: str, *matchers: str, window: str = RATE) -> str:
    return f"rate({sel(metric, *matchers)}[{window}])"


def quantiles(histogram: str, by: str, legend: str, *matchers: str) -> list[Target]:
    """p50, p95, p99 of a histogram, per `by` (histogram_quantile over its _bucket rate)."""
    group = f"{by}, le" if by else "le"
    return [
        Target(
            f"histogram_quantile({q}, sum by ({group}) ({rate(histogram + '_bucket', *matchers)}))",
            f"{legend} p{round(q * 100)}".strip(),
        )
        for q in (0.5, 0.95, 0.99)
    ]


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: list[Target]
    unit: str = "short"
    kind: Literal["timeseries", "stat", "bargauge"] = "timeseries"
    width: int = 8
    height: int = 8
    stack: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)


DASHBOARD: Final = [
    Row(
        "Health",
        [
            Panel(
                "Services scraped and up",
                "Prometheus' `up` per service: 1 when its /metrics answered the last scrape.",
                [Target(f'sum by (job) (up{{{NAMESPACE}, job=~"{SERVICE_JOBS}"}})', "{{job}}")],
                kind="stat",
            ),
            Panel(
                "Ready replicas",
                "Ready replicas of each service's StatefulSet (kube-state-metrics).",
                [
                    Target(
                        "sum by (statefulset) (kube_statefulset_status_replicas_ready"
                        f'{{{NAMESPACE}, statefulset=~"{SERVICE_JOBS}"}})',
                        "{{statefulset}}",
                    )
                ],
                kind="stat",
            ),
            Panel(
                "Audit log size",
                "Records in the audit log (its Merkle tree's size).",
                [Target(f"max({sel('safetychain_audit_log_records')})", "records")],
                kind="stat",
            ),
        ],
    ),
    Row(
        "The exchange",
        [
            Panel(
                "Deliveries per partner",
                "Signals delivered to each chain partner (committed transactions only).",
                [Target(f"sum by (partner) ({rate('safetychain_deliveries_total')})", "{{partner}}")],
                unit="ops",
                stack=True,
            ),
            Panel(
                "Decisions by outcome",
                "Consent's decisions per recipient: permit or deny.",
                [Target(f"sum by (outcome) ({rate('safetychain_decisions_total')})", "{{outcome}}")],
                unit="ops",
                stack=True,
            ),
            Panel(
                "Signals by outcome and reason",
                "Signals decided at intake: accepted, or rejected with the reason code.",
                [
                    Target(
                        f"sum by (outcome, reason) ({rate('safetychain_signals_total')})",
                        "{{outcome}} {{reason}}",
                    )
                ],
                unit="ops",
                stack=True,
            ),
            Panel(
                "Refusals by reason (in the time range)",
                "Signals refused at intake in the selected time range, by reason code.",
                [
                    Target(
                        "sort_desc(sum by (reason) (increase("
                        f"{sel('safetychain_signals_total', REJECTED)}[$__range])))",
                        "{{reason}}",
                    )
                ],
                kind="bargauge",
            ),
            Panel(
                "Erasure notices per partner",
                "Erasure notices sent to each partner that received data about an erased subject.",
                [Target(f"sum by (partner) ({rate('safetychain_erasure_notices_total')})", "{{partner}}")],
                unit="ops",
            ),
            Panel(
                "Denied share of decisions",
                "Share of consent's decisions that denied (deny by default: a rise can mean an "
                "agreement expired).",
                [
                    Target(
                        f"sum({rate('safetychain_decisions_total', DENIED)})"
                        f" / sum({rate('safetychain_decisions_total')})",
                        "deny",
                    )
                ],
                unit="percentunit",
            ),
        ],
    ),
    Row(
        "Processing loops (signals' intake, consent's decisions)",
        [
            Panel(
                "Batches by outcome",
                "Transactions per second, committed or aborted.",
                [
                    Target(
                        f"sum by (processor, outcome) ({rate('safetychain_batches_total')})",
                        "{{processor}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Aborted batches (per 5 minutes)",
                "Batches whose transaction aborted: their outputs were discarded and the records "
                "are read again.",
                [
                    Target(
                        f"sum by (processor) (increase({sel('safetychain_batches_total', ABORTED)}[5m]))",
                        "{{processor}}",
                    )
                ],
            ),
            Panel(
                "Batch latency",
                "Seconds from reading a batch to its commit or abort: quantiles of "
                "safetychain_batch_seconds.",
                quantiles("safetychain_batch_seconds", "processor", "{{processor}}"),
                unit="s",
            ),
            Panel(
                "Records per batch",
                "Mean batch size per processor.",
                [
                    Target(
                        f"sum by (processor) ({rate('safetychain_batch_records_sum')})"
                        f" / sum by (processor) ({rate('safetychain_batch_records_count')})",
                        "{{processor}}",
                    )
                ],
            ),
            Panel(
                "Failures in a row",
                "Batches failed since the last commit: unready at 5, restarted at 30.",
                [Target(f"max by (processor) ({sel('safetychain_failures_in_a_row')})", "{{processor}}")],
            ),
            Panel(
                "Seconds since the last commit",
                "Grows while a loop is idle (nothing to read) as well as when it is stuck: read it "
                "with the lag.",
                [
                    Target(
                        f"max by (processor) ({sel('safetychain_seconds_since_last_commit')})",
                        "{{processor}}",
                    )
                ],
                unit="s",
            ),
            Panel(
                "Dead-lettered records (per 15 minutes)",
                "Records a loop set aside after repeated failure, with their reason.",
                [
                    Target(
                        "sum by (processor) (increase("
                        f"{sel('safetychain_dead_lettered_records_total')}[15m]))",
                        "{{processor}}",
                    )
                ],
            ),
        ],
    ),
    Row(
        "Lag",
        [
            Panel(
                "Consumer lag per consumer and topic",
                "Records between each service's position and the end of each topic it reads "
                "(the services' own measure, summed over partitions and replicas).",
                [
                    Target(
                        f"sum by (consumer, topic) ({sel('safetychain_consumer_lag_records')})",
                        "{{consumer}}: {{topic}}",
                    )
                ],
                width=12,
            ),
            Panel(
                "Compacted state views behind their topics",
                "Records of consent's compacted state topics (agreements, directives, recipients, "
                "data keys) not yet read into its views.",
                [Target(f"max by (view) ({sel('safetychain_state_view_lag_records')})", "{{view}}")],
                width=12,
            ),
        ],
    ),
    Row(
        "Audit log",
        [
            Panel(
                "Audit appends by kind",
                "Facts the audit log took in: a fact, a redelivery (duplicate) or a flagged record "
                "(forged, unverifiable, unreadable, ...).",
                [Target(f"sum by (kind) ({rate('safetychain_audit_appends_total')})", "{{kind}}")],
                unit="ops",
                stack=True,
            ),
            Panel(
                "Audit log size",
                "Records in the audit log.",
                [Target(f"max({sel('safetychain_audit_log_records')})", "records")],
            ),
            Panel(
                "Audit append latency",
                "Seconds to append one fact to the audit store.",
                quantiles("safetychain_audit_append_seconds", "", ""),
                unit="s",
            ),
            Panel(
                "Checkpoints issued (per hour)",
                "Signed checkpoints of the log.",
                [
                    Target(
                        f"sum(increase({sel('safetychain_audit_checkpoints_total')}[1h]))",
                        "checkpoints",
                    )
                ],
            ),
        ],
    ),
    Row(
        "Stores (signals' key store and ledger)",
        [
            Panel(
                "Store latency p99",
                "Seconds per key-store and ledger operation, 99th percentile.",
                [
                    Target(
                        "histogram_quantile(0.99, sum by (store, operation, le) "
                        f"({rate('safetychain_store_seconds_bucket')}))",
                        "{{store}} {{operation}}",
                    )
                ],
                unit="s",
                width=12,
            ),
            Panel(
                "Store operations",
                "Key-store and ledger operations per second.",
                [
                    Target(
                        f"sum by (store, operation) ({rate('safetychain_store_seconds_count')})",
                        "{{store}} {{operation}}",
                    )
                ],
                unit="ops",
                width=12,
            ),
        ],
    ),
    Row(
        "Kafka (broker side: Strimzi's Kafka Exporter and the nodes' metrics)",
        [
            Panel(
                "Consumer group lag (broker)",
                "Records beyond each consumer group's committed offsets, per topic, as the broker "
                "sees it (Kafka Exporter): still there when a service is down.",
                [
                    Target(
                        f"sum by (consumergroup, topic) ({sel('kafka_consumergroup_lag')})",
                        "{{consumergroup}}: {{topic}}",
                    )
                ],
            ),
            Panel(
                "Records written per topic",
                "Growth of each topic's end offsets (Kafka Exporter; transaction markers count too).",
                [
                    Target(
                        f"sum by (topic) ({rate('kafka_topic_partition_current_offset')})",
                        "{{topic}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Under-replicated partitions",
                "Partitions with fewer in-sync replicas than replicas, and below min.insync.replicas "
                "(the Kafka nodes' JMX exporter, deploy/k8s/base/kafka-metrics.yaml).",
                [
                    Target(
                        f"sum({sel('kafka_server_replicamanager_underreplicatedpartitions')})",
                        "under-replicated",
                    ),
                    Target(
                        f"sum({sel('kafka_server_replicamanager_underminisrpartitioncount')})",
                        "under min ISR",
                    ),
                ],
            ),
        ],
    ),
]


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    targets = [
        {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": target.expr,
            "legendFormat": target.legend,
            # a bar gauge over the time range wants one value; the others a series
            "range": panel.kind != "bargauge",
            "instant": panel.kind == "bargauge",
            "refId": letters[index],
        }
        for index, target in enumerate(panel.targets)
    ]
    defaults: dict[str, Any] = {"unit": panel.unit}
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10 if panel.stack else 0,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    else:
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "displayMode": "basic",
            "orientation": "horizontal",
            "showUnfilled": True,
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model: one row panel per Row, its panels laid out left to right."""
    panels: list[dict[str, Any]] = []
    y = 0
    panel_id = 0
    for row in DASHBOARD:
        panel_id += 1
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        row_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panel_id += 1
            panels.append(_panel_json(panel, panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "id": None,
        "uid": DASHBOARD_UID,
        "title": "safety-chain: the exchange",
        "description": (
            "Flow per partner, refusals, decisions, lag, latency, aborts and the audit log of "
            "safety-chain (deploy/monitoring/README.md). No label carries personal data."
        ),
        "tags": ["safety-chain", "kafka"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "definition": "label_values(safetychain_consumer_lag_records, namespace)",
                    "query": {
                        "qryType": 1,
                        "query": "label_values(safetychain_consumer_lag_records, namespace)",
                        "refId": "PrometheusVariableQueryEditor-VariableQuery",
                    },
                    "current": {},
                    "hide": 0,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "sort": 1,
                },
            ]
        },
        "panels": panels,
    }


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the rules' exprs) as literal blocks, as they are written by hand."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

PROMETHEUS_RULE_HEADER: Final = (
    "# GENERATED from safety-chain.rules.yaml by `python -m deploy.monitoring.generate`: edit that\n"
    "# file, not this one (the test holds the two to the same rules).\n"
    "#\n"
    "# The alert rules as a Prometheus Operator PrometheusRule. Apply it into the namespace your\n"
    "# Prometheus reads rules from, with the labels its ruleSelector asks for (kube-prometheus-stack:\n"
    "# release: <its release name>), e.g.\n"
    "#   kubectl -n safety-chain apply -f deploy/monitoring/prometheus/prometheusrule.yaml\n"
)


def prometheus_rule(rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "safety-chain",
            "labels": {
                "app.kubernetes.io/name": "safety-chain",
                "app.kubernetes.io/part-of": "safety-chain",
                "app.kubernetes.io/component": "monitoring",
            },
        },
        "spec": {"groups": rules["groups"]},
    }


def prometheus_rule_text(rules_text: str) -> str:
    body = yaml.dump(
        prometheus_rule(yaml.safe_load(rules_text)),
        Dumper=_Dumper,
        sort_keys=False,
        width=4096,
        allow_unicode=True,
    )
    return PROMETHEUS_RULE_HEADER + body


def render(repo_root: Path) -> dict[Path, str]:
    """Both generated files, by path relative to the repository root."""
    rules = (repo_root / RULES_FILE.relative_to(REPO_ROOT)).read_text(encoding="utf-8")
    return {
        DASHBOARD_FILE.relative_to(REPO_ROOT): dashboard_text(),
        PROMETHEUS_RULE_FILE.relative_to(REPO_ROOT): prometheus_rule_text(rules),
    }


def outputs() -> dict[Path, str]:
    """Both generated files of this repository, by absolute path."""
    return {REPO_ROOT / path: text for path, text in render(REPO_ROOT).items()}


GENERATOR: Final = Generator(
    command="python -m deploy.monitoring.generate",
    description="Generate the Grafana dashboard and the PrometheusRule of deploy/monitoring.",
    render=render,
    root=REPO_ROOT,
)


def main(argv: Sequence[str] | None = None) -> int:
    return GENERATOR.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
