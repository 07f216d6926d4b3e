"""deploy/monitoring: the Grafana dashboard, the alert rules, their PrometheusRule and the
monitors. Every query names metrics that exist (shared/plumbing/metrics.py or a listed exporter), every
rule and query passes Prometheus' own checks (promcheck, built once into .cache/monitoring/ from
the Prometheus module pinned in deploy/monitoring/promcheck/go.mod; when it cannot be built these
tests fail, nothing is skipped), every alert says how bad it is and where its runbook is."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.monitoring import check, generate

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
K8S_BASE = REPO_ROOT / "deploy" / "k8s" / "base"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
SERVICE_PORTS = {"signals": 8001, "consent": 8002, "audit": 8003}

RUNBOOK_ANCHORS = {
    "consumer-lag",
    "service-unready",
    "aborted-transactions",
    "stalled-commits",
    "loop-failing",
    "dead-letters",
    "audit-log-not-growing",
    "certificate-expiry",
}
"""The sections of docs/operations.md the alerts' runbook_urls point at."""

OPERATOR_LABELS = {
    # the services' own labels (shared/plumbing/metrics.py): names, codes, organisation ids
    "processor", "consumer", "topic", "view", "outcome", "reason", "partner", "kind", "store",
    "operation", "le",
    # added by the scrape, kube-state-metrics, the Kafka Exporter, cert-manager and Strimzi
    "job", "instance", "namespace", "pod", "statefulset", "condition", "consumergroup", "name",
    "cluster", "resource_namespace", "type",
}  # fmt: skip
"""Every label a query groups by, matches on or shows: none carries personal data (no
pseudonym, signal id, delivery id or correlation id)."""

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def dashboard() -> Doc:
    return check.load_dashboard()


@pytest.fixture(scope="module")
def rules() -> Doc:
    return check.load_rules()


def alerts(rules: Doc) -> list[Doc]:
    return [rule for group in rules["groups"] for rule in group["rules"]]


def query_panels(dashboard: Doc) -> list[Doc]:
    return [panel for panel in check.panels(dashboard) if panel["type"] != "row"]


# --- generated files ----------------------------------------------------------------------------


def test_the_generated_files_are_what_the_generator_writes() -> None:
    for path, text in generate.outputs().items():
        assert path.read_text(encoding="utf-8") == text, f"{path}: run python -m deploy.monitoring.generate"
    assert generate.main(["--check"]) == 0


def test_the_prometheus_rule_holds_the_rules_of_the_rules_file(rules: Doc) -> None:
    wrapper = check.load_prometheus_rule()
    assert wrapper["apiVersion"] == "monitoring.coreos.com/v1"
    assert wrapper["kind"] == "PrometheusRule"
    assert wrapper["metadata"]["name"] == "safety-chain"
    assert set(wrapper) == {"apiVersion", "kind", "metadata", "spec"}
    assert wrapper["spec"] == {"groups": rules["groups"]}


# --- the dashboard --------------------------------------------------------------------------------


def test_the_dashboard_is_a_grafana_json_model_on_a_chosen_prometheus(dashboard: Doc) -> None:
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == generate.DASHBOARD_UID and dashboard["title"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(check.panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert len(query_panels(dashboard)) >= 20
    for panel in query_panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].strip()
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]

    # No data source uid is hard-coded anywhere: each one is the variable.
    def uids(node: Any, key: str = "") -> list[str]:
        if isinstance(node, dict):
            return [uid for k, value in node.items() for uid in uids(value, k)]
        if isinstance(node, list):
            return [uid for item in node for uid in uids(item, key)]
        return [node] if key == "uid" and isinstance(node, str) else []

    assert set(uids(dashboard)) == {"${datasource}", generate.DASHBOARD_UID}
    assert sum(1 for uid in uids(dashboard) if uid == generate.DASHBOARD_UID) == 1


def test_the_dashboard_shows_the_exchange_its_loops_lag_audit_stores_and_broker(dashboard: Doc) -> None:
    exprs = list(check.dashboard_exprs(dashboard).values())
    shown = set().union(*(check.names_in(expr).metrics for expr in exprs))
    assert {
        "safetychain_deliveries_total",  # flow per partner
        "safetychain_decisions_total",
        "safetychain_signals_total",  # accepted, and rejected by reason
        "safetychain_erasure_notices_total",
        "safetychain_batches_total",  # aborted batches
        "safetychain_batch_seconds_bucket",
        "safetychain_failures_in_a_row",
        "safetychain_seconds_since_last_commit",
        "safetychain_dead_lettered_records_total",
        "safetychain_consumer_lag_records",
        "safetychain_state_view_lag_records",
        "safetychain_audit_appends_total",
        "safetychain_audit_log_records",
        "safetychain_store_seconds_bucket",
        "kafka_consumergroup_lag",
        "kafka_topic_partition_current_offset",
    } <= shown
    joined = "\n".join(exprs)
    assert re.search(
        r"histogram_quantile\(0\.99, sum by \(processor, le\) \(rate\(safetychain_batch_seconds_bucket",
        joined,
    )
    assert re.search(r"sum by \(partner\) \(rate\(safetychain_deliveries_total", joined)
    assert re.search(
        r"sum by \(reason\) \(increase\(safetychain_signals_total\{[^}]*outcome=\"rejected\"", joined
    )
    assert re.search(r"safetychain_batches_total\{[^}]*outcome=\"aborted\"", joined)
    assert re.search(r"sum by \(consumer, topic\) \(safetychain_consumer_lag_records", joined)


def test_every_dashboard_query_names_known_metrics(dashboard: Doc) -> None:
    known = check.known_metrics()
    exprs = check.dashboard_exprs(dashboard)
    assert len(exprs) >= 25
    problems = [f"{where}: {p}" for where, expr in exprs.items() for p in check.problems_in(expr, known)]
    assert problems == []


def test_every_dashboard_query_parses_in_prometheus(dashboard: Doc) -> None:
    exprs = check.dashboard_exprs(dashboard)
    parsed = check.parse_exprs([check.as_prometheus_sees_it(expr) for expr in exprs.values()])
    assert [(where, p.error) for where, p in zip(exprs, parsed, strict=True) if p.error] == []


# --- the metric-name check itself -----------------------------------------------------------------


def test_the_metric_name_check_reports_a_made_up_metric_and_nothing_else(dashboard: Doc) -> None:
    assert check.problems_in("sum(rate(safetychain_made_up_total[5m]))") == [
        "unknown metric safetychain_made_up_total"
    ]
    # a near miss: the counter without its _total suffix is no series
    assert check.problems_in("rate(safetychain_deliveries[5m])") == ["unknown metric safetychain_deliveries"]
    assert check.problems_in("made_up_function(safetychain_audit_log_records)") == [
        "function made_up_function is not in the allowlist"
    ]
    # label names, label values, strings, durations, numbers, keywords and Grafana variables are
    # no metric names
    assert (
        check.problems_in(
            'sum by (partner) (rate(safetychain_deliveries_total{partner="not_a_metric", '
            'namespace=~"$namespace"}[$__rate_interval])) > bool 1e3 and on (partner) '
            "safetychain_deliveries_total offset 15m unless ignoring (le) "
            'label_replace(up, "dst", "$1", "job", "(.*)") * 0x1F'
        )
        == []
    )
    # ... and the check reaches every panel: a made-up metric in the last query is reported
    broken = copy.deepcopy(dashboard)
    last = query_panels(broken)[-1]
    last["targets"][0]["expr"] = "sum(rate(safetychain_made_up_total[5m]))"
    reported = [
        f"{where}: {p}"
        for where, expr in check.dashboard_exprs(broken).items()
        for p in check.problems_in(expr)
    ]
    assert reported == [f"panel {last['title']!r} query A: unknown metric safetychain_made_up_total"]


def test_the_metric_names_found_are_the_ones_prometheus_parser_finds(dashboard: Doc, rules: Doc) -> None:
    exprs = {**check.dashboard_exprs(dashboard), **check.rule_exprs(rules)}
    parsed = check.parse_exprs([check.as_prometheus_sees_it(expr) for expr in exprs.values()])
    for (where, expr), by_prometheus in zip(exprs.items(), parsed, strict=True):
        assert by_prometheus.error is None, where
        assert check.names_in(expr).metrics == by_prometheus.metrics, where


def test_the_function_allowlist_names_prometheus_functions() -> None:
    assert check.prometheus_functions() >= check.FUNCTIONS - check.AGGREGATIONS
    assert not check.AGGREGATIONS & check.prometheus_functions()  # aggregations are operators


def test_the_external_metrics_of_the_kafka_nodes_are_exported_by_their_jmx_rules() -> None:
    """The JMX exporter's names are made by deploy/k8s/base/kafka-metrics.yaml's rules."""
    (config_map,) = yaml.safe_load_all((K8S_BASE / "kafka-metrics.yaml").read_text(encoding="utf-8"))
    (config_text,) = config_map["data"].values()
    config = yaml.safe_load(config_text)
    assert config["lowercaseOutputName"] is True
    jmx = [name for name, source in check.EXTERNAL_METRICS.items() if source == "Kafka JMX exporter"]
    assert jmx
    for name in jmx:
        made = False
        for rule in config["rules"]:
            template = re.escape(rule["name"]).replace(r"\$1", "(.+)")
            match = re.fullmatch(template.lower(), name)
            if match and (not match.groups() or match.group(1) in rule["pattern"].lower()):
                made = True
        assert made, f"{name}: no rule of kafka-metrics.yaml makes it"


# --- the rules ------------------------------------------------------------------------------------


def test_every_rule_expr_names_known_metrics(rules: Doc) -> None:
    known = check.known_metrics()
    problems = [
        f"{where}: {p}"
        for where, expr in check.rule_exprs(rules).items()
        for p in check.problems_in(expr, known)
    ]
    assert problems == []


def test_the_rules_pass_prometheus_rule_checks() -> None:
    passed, said = check.check_rule_files(generate.RULES_FILE)
    assert passed, said
    assert f"{len(alerts(check.load_rules()))} rules found" in said


def test_the_prometheus_rule_check_can_fail(rules: Doc, tmp_path: Path) -> None:
    """Each way of breaking a copy of the rules is refused, with Prometheus' reason."""

    def first_rule(change: Callable[[Doc], object]) -> Callable[[Doc], object]:
        return lambda doc: change(doc["groups"][0]["rules"][0])

    cases: dict[str, tuple[Callable[[Doc], object], str]] = {
        "unbalanced": (
            first_rule(lambda rule: rule.update(expr="sum(rate(safetychain_batches_total[5m])")),
            "unclosed left parenthesis",
        ),
        "unknown-field": (
            first_rule(lambda rule: rule.update(severity="warning")),
            "field severity not found",
        ),
        "bad-for": (first_rule(lambda rule: rule.update({"for": "ten minutes"})), "not a valid duration"),
        "bad-template": (
            first_rule(lambda rule: rule["annotations"].update(summary="{{ $labels.processor ")),
            "unclosed action",
        ),
        "duplicate": (
            lambda doc: doc["groups"][0]["rules"].append(doc["groups"][0]["rules"][0]),
            "duplicate rule SafetyChainConsumerLagGrowing",
        ),
    }
    for name, (mutate, reason) in cases.items():
        doc = copy.deepcopy(rules)
        mutate(doc)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        passed, said = check.check_rule_files(path)
        assert not passed and reason in said, f"{name}: {said}"


def test_every_alert_has_for_severity_summary_description_and_runbook(rules: Doc) -> None:
    names = [rule.get("alert") for rule in alerts(rules)]
    assert all(names) and len(names) == len(set(names))  # alerts only, each name once
    for rule in alerts(rules):
        name = rule["alert"]
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        match = re.fullmatch(r"docs/operations\.md#([a-z0-9-]+)", annotations["runbook_url"])
        assert match and match.group(1) in RUNBOOK_ANCHORS, name
    assert {rule["annotations"]["runbook_url"].split("#")[1] for rule in alerts(rules)} == RUNBOOK_ANCHORS


def _slug(heading: str) -> str:
    """A Markdown heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_runbook_anchors_are_sections_of_docs_operations() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", OPERATIONS.read_text(encoding="utf-8"), re.MULTILINE)
    assert {_slug(heading) for heading in headings} >= RUNBOOK_ANCHORS


def test_the_rules_alert_on_what_the_issue_asks(rules: Doc) -> None:
    by_metric: dict[str, list[str]] = {}
    for rule in alerts(rules):
        for metric in check.names_in(rule["expr"]).metrics:
            by_metric.setdefault(metric, []).append(rule["expr"])

    def uses(metric: str, pattern: str = "") -> bool:
        return any(re.search(pattern, expr, re.DOTALL) for expr in by_metric.get(metric, []))

    assert uses("safetychain_consumer_lag_records", r"deriv\(safetychain_consumer_lag_records\[10m\]\)")
    assert uses("kafka_consumergroup_lag", r"deriv\(kafka_consumergroup_lag")
    assert uses("up", r"== 0")
    assert uses("kube_pod_status_ready") and uses("kube_statefulset_status_replicas_ready")
    assert uses("safetychain_batches_total", r'outcome="aborted"')
    assert uses("safetychain_seconds_since_last_commit", r"safetychain_consumer_lag_records")
    assert uses("safetychain_failures_in_a_row")
    assert uses("safetychain_dead_lettered_records_total")
    assert uses("safetychain_audit_log_records", r"safetychain_(signals|decisions)_total")
    assert uses("certmanager_certificate_expiration_timestamp_seconds", r"time\(\)")
    assert uses("strimzi_certificate_expiration_timestamp_ms", r"/ 1000 - time\(\)")
    unready = [rule for rule in alerts(rules) if "kube_statefulset_status_replicas_ready" in rule["expr"]]
    assert unready and all(rule["for"] == "5m" for rule in unready)
    # the pods of the services' StatefulSets are <service>-<ordinal> (deploy/k8s/base)
    pod_rules = [rule["expr"] for rule in alerts(rules) if "kube_pod_status_ready" in rule["expr"]]
    patterns = [match for expr in pod_rules for match in re.findall(r'pod=~"([^"]+)"', expr)]
    assert patterns
    for pattern in patterns:
        for name in SERVICE_PORTS:
            assert re.fullmatch(pattern, f"{name}-0") and re.fullmatch(pattern, f"{name}-11"), pattern
        assert not re.fullmatch(pattern, "signals-pods"), pattern


# --- no personal data -----------------------------------------------------------------------------

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def test_the_queries_and_texts_use_only_labels_without_personal_data(dashboard: Doc, rules: Doc) -> None:
    used: set[str] = set()
    exprs = [*check.dashboard_exprs(dashboard).values(), *check.rule_exprs(rules).values()]
    for expr in exprs:
        for labels in _GROUPING.findall(expr):
            used |= {label.strip() for label in labels.split(",") if label.strip()}
        for braces in re.findall(r"\{([^{}]*)\}", expr):
            used |= set(_MATCHER.findall(braces))
        # label_replace(v, "dst", "replacement", "src", "regex"): dst and src are labels
        for dst, src in re.findall(r'label_replace\([^"]*"(\w+)",\s*"[^"]*",\s*"(\w+)"', expr):
            used |= {dst, src}
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            used |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target["legendFormat"]))
    for rule in alerts(rules):
        for text in rule["annotations"].values():
            used |= set(re.findall(r"\$labels\.(\w+)", text))
    assert used, "nothing found: the extraction is broken"
    assert used <= OPERATOR_LABELS, used - OPERATOR_LABELS


# --- what Prometheus scrapes ----------------------------------------------------------------------


def _k8s_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def test_the_service_monitor_scrapes_each_service_on_its_http_port(rules: Doc) -> None:
    monitors = {
        doc["metadata"]["name"]: doc for doc in _k8s_docs(MONITORING / "prometheus" / "monitors.yaml")
    }
    services = monitors["safety-chain"]
    assert services["apiVersion"] == "monitoring.coreos.com/v1" and services["kind"] == "ServiceMonitor"
    (expression,) = services["spec"]["selector"]["matchExpressions"]
    assert expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In"
    assert set(expression["values"]) == set(SERVICE_PORTS)
    (endpoint,) = services["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    # ... which is what deploy/k8s/base names: each Service's port `http`, on the service's port
    for name, port in SERVICE_PORTS.items():
        docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _k8s_docs(K8S_BASE / f"{name}.yaml")}
        service, workload = docs[("Service", name)], docs[("StatefulSet", name)]
        # the StatefulSet's headless Service is not scraped: each replica would count twice
        selected = [
            doc
            for (kind, _), doc in docs.items()
            if kind == "Service"
            and doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") in set(SERVICE_PORTS)
        ]
        assert selected == [service]
        assert service["metadata"]["labels"]["app.kubernetes.io/name"] == name
        assert {"name": "http", "port": port} in [
            {"name": p["name"], "port": p["port"]} for p in service["spec"]["ports"]
        ]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert {"name": "http", "containerPort": port} in container["ports"]
    # the job label is the Service's name: what the rules select
    assert f'job=~"{generate.SERVICE_JOBS}"' in "\n".join(check.rule_exprs(rules).values())
    assert set(generate.SERVICE_JOBS.split("|")) == set(SERVICE_PORTS)


def test_the_pod_monitors_reach_the_kafka_exporter_and_the_cluster_operator() -> None:
    monitors = {
        doc["metadata"]["name"]: doc for doc in _k8s_docs(MONITORING / "prometheus" / "monitors.yaml")
    }
    kafka_cr = next(doc for doc in _k8s_docs(K8S_BASE / "kafka.yaml") if doc["kind"] == "Kafka")
    assert "kafkaExporter" in kafka_cr["spec"] and "metricsConfig" in kafka_cr["spec"]["kafka"]
    kafka = monitors["safety-chain-kafka"]
    assert kafka["kind"] == "PodMonitor"
    assert kafka["spec"]["selector"]["matchLabels"] == {"strimzi.io/cluster": kafka_cr["metadata"]["name"]}
    assert [e["port"] for e in kafka["spec"]["podMetricsEndpoints"]] == ["tcp-prometheus"]
    operator = monitors["strimzi-cluster-operator"]
    assert operator["kind"] == "PodMonitor"
    assert operator["spec"]["selector"]["matchLabels"] == {"strimzi.io/kind": "cluster-operator"}


def test_the_readme_lists_every_alert_and_file(rules: Doc) -> None:
    readme = (MONITORING / "README.md").read_text(encoding="utf-8")
    for rule in alerts(rules):
        assert f"`{rule['alert']}`" in readme, rule["alert"]
    for anchor in RUNBOOK_ANCHORS:
        assert f"#{anchor}" in readme, anchor
    for path in (
        "grafana/safety-chain.json",
        "prometheus/safety-chain.rules.yaml",
        "prometheus/prometheusrule.yaml",
        "prometheus/monitors.yaml",
    ):
        assert (MONITORING / path).is_file() and path in readme, path
