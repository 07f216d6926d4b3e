"""What a platform team checks before it runs deploy/k8s, on what kustomize builds: the base and
the production overlay, probes and start-up budgets, replicas (StatefulSets, PostgreSQL, KEDA),
disruption budgets, default-deny network policies with every allowed flow named, secrets only as
files, images by digest, the Strimzi range, the external listener, broker metrics, node spread
and the Ingress."""

from __future__ import annotations

import importlib
import ipaddress
import pkgutil
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import APIRouter
from sqlalchemy import make_url

from deploy.k8s import generate, validate
from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.contracts.topics import Party, consumed_by, is_compacted
from shared.plumbing.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
SERVICES = ("signals", "consent", "audit")
BUILDS = ("base", "production")
NAMESPACE = "safety-chain"
WORKLOAD = generate.WORKLOAD_KIND
"""What runs each service: a StatefulSet."""
START_UP_BUDGET_SECONDS = 10 * 60
"""consent replays its state topics before it serves: at least ten minutes for every service."""

Manifest = dict[str, Any]


def _of_kind(documents: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def _kafka(documents: list[Manifest]) -> Manifest:
    kafka: Manifest = _of_kind(documents, "Kafka")[generate.CLUSTER_NAME]
    return kafka


def _listeners(documents: list[Manifest]) -> dict[str, Manifest]:
    return {listener["name"]: listener for listener in _kafka(documents)["spec"]["kafka"]["listeners"]}


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector against a set of labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def _load(path: Path) -> Manifest:
    loaded: Manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


# ------------------------------------------------------------------------------------ structure


def test_production_is_an_overlay_on_the_base_and_every_build_is_validated() -> None:
    base = _load(BASE / "kustomization.yaml")
    overlay = _load(PRODUCTION / "kustomization.yaml")
    assert overlay["resources"][0] == "../../base"
    assert overlay["namespace"] == base["namespace"] == NAMESPACE
    for entry in base["resources"]:
        assert (BASE / entry).is_file(), entry
    assert Path("deploy/k8s/base") == generate.K8S_DIR, "the generated files belong to the base"
    overlays = {path.name for path in (K8S / "overlays").iterdir() if path.is_dir()}
    assert {"base": BASE, **{name: K8S / "overlays" / name for name in overlays}} == validate.BUILDS


def test_the_production_overlay_changes_images_replicas_resources_the_external_listener_and_hosts(
    builds: dict[str, list[Manifest]],
) -> None:
    base, production = builds["base"], builds["production"]
    for name in SERVICES:
        before = _of_kind(base, WORKLOAD)[name]["spec"]["template"]["spec"]["containers"][0]
        after = _of_kind(production, WORKLOAD)[name]["spec"]["template"]["spec"]["containers"][0]
        assert before["image"] != after["image"]
        assert before["resources"] != after["resources"], name
    assert set(_of_kind(base, "KafkaNodePool")) == {"dual-role"}
    pools = _of_kind(production, "KafkaNodePool")
    assert {name: pool["spec"]["roles"] for name, pool in pools.items()} == {
        "controllers": ["controller"],
        "brokers": ["broker"],
    }
    assert "configuration" not in _listeners(base)["external"]
    assert _listeners(production)["external"]["configuration"]
    hosts = {
        build: {rule["host"] for rule in _of_kind(builds[build], "Ingress")["safety-chain"]["spec"]["rules"]}
        for build in BUILDS
    }
    assert hosts["base"].isdisjoint(hosts["production"])
    # apart from the node pool it replaces and the SQLite volumes PostgreSQL replaces, production
    # has everything the base has
    kinds = {build: {(doc["kind"], doc["metadata"]["name"]) for doc in builds[build]} for build in BUILDS}
    replaced = {("KafkaNodePool", "dual-role"), ("PersistentVolumeClaim", "signals-data")}
    replaced |= {("PersistentVolumeClaim", "audit-data")}
    assert kinds["base"] - replaced <= kinds["production"]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_believes_forwarded_headers_from_the_ingress_controllers_range_only(
    builds: dict[str, list[Manifest]], build: str, name: str
) -> None:
    container = _of_kind(builds[build], WORKLOAD)[name]["spec"]["template"]["spec"]["containers"][0]
    trusted = next(item["value"] for item in container["env"] if item["name"] == "SC_TRUSTED_PROXIES")
    networks = [ipaddress.ip_network(item.strip()) for item in trusted.split(",")]
    # a range, never everyone (anyone could then claim any client address)
    assert networks and all(network.prefixlen >= 8 for network in networks), trusted
    if build == "production":
        # a documented placeholder that trusts no one until the operator names the controller's range
        assert networks == [ipaddress.ip_network("203.0.113.0/24")]
        assert "203.0.113.0/24" in (PRODUCTION / "kustomization.yaml").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------- probes


def _documented_budget(name: str) -> tuple[int, int, int]:
    """(failureThreshold, periodSeconds, minutes) as the comment in base/<name>.yaml states them."""
    text = (BASE / f"{name}.yaml").read_text(encoding="utf-8")
    found = re.search(r"#\s*Start-up budget: (\d+) x (\d+) s = (\d+) minutes", text)
    assert found, f"base/{name}.yaml does not document its start-up budget"
    threshold, period, minutes = (int(group) for group in found.groups())
    return threshold, period, minutes


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_has_startup_liveness_and_readiness_probes_and_a_documented_start_up_budget(
    builds: dict[str, list[Manifest]], build: str, name: str
) -> None:
    container = _of_kind(builds[build], WORKLOAD)[name]["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    http_port = int(next(item["value"] for item in container["env"] if item["name"] == "SC_HTTP_PORT"))
    probes = {
        probe: (container[probe]["httpGet"]["path"], ports[container[probe]["httpGet"]["port"]])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", http_port),
        "livenessProbe": ("/healthz", http_port),
        "readinessProbe": ("/readyz", http_port),
    }
    startup = container["startupProbe"]
    budget = startup["failureThreshold"] * startup["periodSeconds"]
    assert budget >= START_UP_BUDGET_SECONDS, f"{name}: {budget} s to start"
    threshold, period, minutes = _documented_budget(name)
    assert (threshold, period, minutes * 60) == (
        startup["failureThreshold"],
        startup["periodSeconds"],
        budget,
    )
    # once started, a dead loop is found within half a minute
    liveness = container["livenessProbe"]
    assert liveness["failureThreshold"] * liveness["periodSeconds"] <= 60


def test_consent_documents_why_its_start_up_takes_long() -> None:
    text = (BASE / "consent.yaml").read_text(encoding="utf-8")
    assert re.search(r"#.*replays its compacted state topics", text)
    assert _documented_budget("consent")[2] >= 15


# --------------------------------------------------------------------------------------- secrets


def _containers(documents: list[Manifest]) -> Iterator[tuple[str, Manifest, Manifest]]:
    """(workload, pod spec, container) for every container of every pod template."""
    for doc in documents:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and pod:
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield f"{doc['kind']}/{doc['metadata']['name']}", pod, container


_SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$", re.IGNORECASE)


@pytest.mark.parametrize("build", BUILDS)
def test_no_secret_reaches_a_container_through_its_environment(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    found = list(_containers(builds[build]))
    assert len(found) == len(SERVICES)
    for workload, pod, container in found:
        assert "envFrom" not in container, workload
        for item in container.get("env", []):
            assert "valueFrom" not in item, f"{workload}: {item['name']} comes from an object, not a value"
            if _SECRET_LIKE.search(item["name"]):
                assert item["name"].endswith(("_FILE", "_DIR", "_FOLDER")), f"{workload}: {item['name']}"
                assert item["value"].startswith("/"), f"{workload}: {item['name']} names a mounted file"
        mounted = {mount["name"] for mount in container.get("volumeMounts", [])}
        secret_volumes = {
            volume["name"]
            for volume in pod["volumes"]
            if "secret" in volume
            or any("secret" in source for source in volume.get("projected", {}).get("sources", []))
        }
        assert secret_volumes <= mounted, f"{workload}: a Secret volume that is not mounted"
        for mount in container["volumeMounts"]:
            if mount["name"] in secret_volumes:
                assert mount.get("readOnly") is True, f"{workload}: {mount['mountPath']}"


# -------------------------------------------------------------------------------------- replicas

SETTINGS: dict[str, type[CommonSettings]] = {
    "signals": SignalsSettings,
    "consent": ConsentSettings,
    "audit": AuditSettings,
}
SCALED_BY_LAG = {"signals": Party.SIGNALS, "consent": Party.CONSENT}
"""The services whose consumer groups share partitions out, and that KEDA scales on their lag."""


def _workload(documents: list[Manifest], name: str) -> Manifest:
    workload: Manifest = _of_kind(documents, WORKLOAD)[name]
    return workload


def _env_of(workload: Manifest) -> dict[str, str]:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"]}


def _settings(
    name: str, workload: Manifest, monkeypatch: pytest.MonkeyPatch, host_name: str | None
) -> CommonSettings:
    """The service's settings from its container's environment, in a pod named `host_name` (the
    kubelet's HOSTNAME), with a stand-in for the mounted Kafka password file."""
    for variable in list(__import__("os").environ):
        if variable.startswith(("SC_", "KAFKA_")) or variable == "HOSTNAME":
            monkeypatch.delenv(variable)
    for variable, value in _env_of(workload).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("SC_KAFKA_SASL_PASSWORD", "stand-in")
    monkeypatch.delenv("SC_KAFKA_SASL_PASSWORD_FILE")
    if host_name is not None:
        monkeypatch.setenv("HOSTNAME", host_name)
    return SETTINGS[name]()


def _scaled_objects(documents: list[Manifest]) -> dict[str, list[Manifest]]:
    """KEDA ScaledObjects by the name of the workload they scale."""
    found: dict[str, list[Manifest]] = {}
    for scaler in _of_kind(documents, "ScaledObject").values():
        target = scaler["spec"]["scaleTargetRef"]
        assert target.get("kind") == WORKLOAD and target.get("apiVersion") == "apps/v1", target
        found.setdefault(target["name"], []).append(scaler)
    return found


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_a_statefulset_whose_pod_names_are_the_replicas_ids(
    builds: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch, build: str, name: str
) -> None:
    workload = _workload(builds[build], name)
    spec = workload["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    # serviceName is a headless Service that selects exactly these pods
    headless = _of_kind(builds[build], "Service")[spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert _selects({"matchLabels": headless["spec"]["selector"]}, spec["template"]["metadata"]["labels"])
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    # SC_REPLICAS says the replica count, and no SC_INSTANCE_ID fixes one id for every replica
    env = _env_of(workload)
    assert "SC_INSTANCE_ID" not in env
    assert int(env["SC_REPLICAS"]) == spec["replicas"]
    ids = set()
    for ordinal in range(spec["replicas"]):
        settings = _settings(name, workload, monkeypatch, host_name=f"{name}-{ordinal}")
        assert settings.replicas == spec["replicas"]
        ids.add(settings.instance_id)
    assert ids == {f"{name}-{ordinal}" for ordinal in range(spec["replicas"])}, "stable and unique"
    if spec["replicas"] > 1:
        # without a pod name (a Deployment's replicas have none that lasts) it refuses to start
        with pytest.raises(ValueError, match="stable id"):
            _settings(name, workload, monkeypatch, host_name=None)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", SERVICES)
def test_replicas_of_a_service_with_a_store_share_it_in_postgresql_over_tls_without_a_password(
    builds: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch, build: str, name: str
) -> None:
    workload = _workload(builds[build], name)
    replicas = workload["spec"]["replicas"]
    settings = _settings(name, workload, monkeypatch, host_name=f"{name}-0")
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for variable, raw in settings.shared_stores.items():
        if replicas == 1 and raw.startswith("sqlite:"):
            continue  # one writer on its volume (test_k8s.py)
        url = make_url(raw)
        assert url.drivername == "postgresql+psycopg", f"{name}: {replicas} replicas share {variable}"
        assert url.password is None, "no password in the environment"
        assert url.query["sslmode"] == "verify-full"
        # the client certificate, its key and the CA: files of one Secret, mounted read-only
        secrets = set()
        for parameter in ("sslcert", "sslkey", "sslrootcert"):
            path = Path(str(url.query[parameter]))
            mount = mounts[str(path.parent)]
            assert mount["readOnly"] is True
            secret = volumes[mount["name"]]["secret"]
            assert path.name in {item["path"] for item in secret["items"]}
            secrets.add(secret["secretName"])
        assert secrets == {f"{name}-postgresql"}, "a Secret of its own"
        # and nothing of SQLite's left: no volume, no claim
        assert not any("persistentVolumeClaim" in volume for volume in volumes.values())
    if replicas > 1:
        assert all(url.startswith("postgresql") for url in settings.shared_stores.values())


def test_production_runs_two_replicas_of_each_service_and_the_base_one(
    builds: dict[str, list[Manifest]],
) -> None:
    for name in SERVICES:
        assert _workload(builds["base"], name)["spec"]["replicas"] == 1, "a minimal cluster"
        # signals and consent: two; audit: a leader and a standby
        assert _workload(builds["production"], name)["spec"]["replicas"] == 2, name
    assert not _of_kind(builds["production"], "PersistentVolumeClaim"), "PostgreSQL holds the stores"


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("name", SERVICES)
def test_replicas_prefer_different_nodes_and_spread_over_zones(
    builds: dict[str, list[Manifest]], build: str, name: str
) -> None:
    template = _workload(builds[build], name)["spec"]["template"]
    labels = template["metadata"]["labels"]
    (term,) = template["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(term["podAffinityTerm"]["labelSelector"], labels), "its own replicas"
    (spread,) = template["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway", "a cluster without zones still schedules"
    assert _selects(spread["labelSelector"], labels)


@pytest.mark.parametrize("name", sorted(SCALED_BY_LAG))
def test_keda_scales_signals_and_consent_on_their_groups_lag_up_to_the_partition_count(
    builds: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    production = builds["production"]
    workload = _workload(production, name)
    (scaler,) = _scaled_objects(production)[name]
    settings = _settings(name, workload, monkeypatch, host_name=f"{name}-0")
    # the topics its consumer group shares out (compacted state topics are read whole, no group)
    grouped = [spec for spec in consumed_by(SCALED_BY_LAG[name]) if not is_compacted(spec)]
    assert grouped
    spec = scaler["spec"]
    assert spec["minReplicaCount"] == workload["spec"]["replicas"], "the floor is the declared count"
    assert spec["maxReplicaCount"] <= min(topic.partitions for topic in grouped), "a replica per partition"
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["consumerGroup"] == settings.topic(name), "the group is <prefix><service>"
    assert metadata["topic"] in {settings.topic(topic.name) for topic in grouped}
    assert metadata["bootstrapServers"] == settings.kafka_bootstrap_servers
    assert int(metadata["lagThreshold"]) > 0
    # the scram listener: TLS and SCRAM-SHA-512, as the services connect
    scram = _listeners(production)["scram"]
    assert metadata["tls"] == "enable" and scram["tls"] is True
    assert scram["authentication"]["type"] == settings.kafka_sasl_mechanism.lower()
    assert metadata["sasl"] == settings.kafka_sasl_mechanism.lower().replace("-sha-", "_sha")
    assert settings.kafka_bootstrap_servers.endswith(f":{scram['port']}")
    # as a user that may describe exactly what it watches: no record read, no group joined
    authentication = _of_kind(production, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    secrets = {ref["parameter"]: ref for ref in authentication["spec"]["secretTargetRef"]}
    config = {ref["parameter"]: ref for ref in authentication["spec"]["configMapTargetRef"]}
    user_name = _of_kind(production, "ConfigMap")[config["username"]["name"]]["data"][
        config["username"]["key"]
    ]
    user = _of_kind(production, "KafkaUser")[user_name]
    assert secrets["password"]["name"] == user_name, "the Secret Strimzi writes for the KafkaUser"
    assert secrets["ca"]["name"] == f"{generate.CLUSTER_NAME}-cluster-ca-cert"
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl["operations"] == ["Describe"], acl
        assert acl["resource"]["patternType"] == "literal", acl
    described = {
        (acl["resource"]["type"], acl["resource"]["name"]) for acl in user["spec"]["authorization"]["acls"]
    }
    assert {("topic", metadata["topic"]), ("group", metadata["consumerGroup"])} <= described


def test_only_the_services_whose_groups_share_partitions_are_autoscaled(
    builds: dict[str, list[Manifest]],
) -> None:
    assert set(_scaled_objects(builds["production"])) == set(SCALED_BY_LAG), "audit: one sequencer"
    assert not _scaled_objects(builds["base"]), "the base needs no KEDA"


@pytest.mark.parametrize("build", BUILDS)
def test_the_brokers_abort_a_stalled_transaction_before_its_partitions_move(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    """A paused replica's open transaction must be aborted before the group hands its partitions
    to another replica (docs/adr/0022): the broker checks for timed-out transactions this often."""
    config = _kafka(builds[build])["spec"]["kafka"]["config"]
    assert int(config["transaction.abort.timed.out.transaction.cleanup.interval.ms"]) == 2000


# ------------------------------------------------------------------------------ disruption budgets


@pytest.mark.parametrize("build", BUILDS)
def test_every_service_has_one_disruption_budget_that_keeps_a_replica_up_and_never_blocks_a_drain(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    budgets = _of_kind(builds[build], "PodDisruptionBudget")
    for name, deployment in _of_kind(builds[build], WORKLOAD).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [pdb for pdb in budgets.values() if _selects(pdb["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        (pdb,) = covering
        # every count the service may run at: its own, and what KEDA may scale it to
        counts = {deployment["spec"]["replicas"]}
        for scaler in _scaled_objects(builds[build]).get(name, []):
            counts |= set(range(scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"] + 1))
        for replicas in counts:
            if "minAvailable" in pdb["spec"]:
                assert isinstance(pdb["spec"]["minAvailable"], int)
                may_evict = replicas - pdb["spec"]["minAvailable"]
            else:
                assert isinstance(pdb["spec"]["maxUnavailable"], int)
                may_evict = min(pdb["spec"]["maxUnavailable"], replicas)
            assert may_evict >= 1, f"{name} at {replicas}: the budget would block every drain"
            if replicas > 1:
                assert replicas - may_evict >= 1, f"{name} at {replicas}: a drain may take every replica"
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("build", BUILDS)
def test_kafka_has_strimzis_pod_disruption_budget_one_node_at_a_time(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    kafka = _kafka(builds[build])["spec"]["kafka"]
    assert kafka["template"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert int(kafka["config"]["min.insync.replicas"]) == generate.TOPIC_REPLICAS - 1


# ------------------------------------------------------------------------------- network policies


@dataclass(frozen=True)
class Peer:
    """A pod (namespace and labels, named ports) or, with `ip`, an address outside the cluster."""

    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str = ""


def _peer_matches(rule_peer: Mapping[str, Any], peer: Peer, namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        if not peer.ip:
            return False  # cluster-internal traffic is meant by selectors here, never by addresses
        address = ipaddress.ip_address(peer.ip)
        network = ipaddress.ip_network(block["cidr"])
        return address in network and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if peer.ip:
        return False
    namespaces = rule_peer.get("namespaceSelector")
    in_namespace = (
        peer.namespace == namespace
        if namespaces is None
        else _selects(namespaces, {"kubernetes.io/metadata.name": peer.namespace})
    )
    pods = rule_peer.get("podSelector")
    return in_namespace and (pods is None or _selects(pods, peer.labels))


def _port_matches(rule_ports: list[Mapping[str, Any]], port: int, protocol: str, target: Peer) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        value = rule_port.get("port")
        if value is None:
            return True
        if isinstance(value, str) and target.ports.get(value) == port:
            return True
        if isinstance(value, int) and value <= port <= rule_port.get("endPort", value):
            return True
    return False


def _allowed_by(
    policies: list[Manifest], direction: str, pod: Peer, other: Peer, port: int, protocol: str, target: Peer
) -> bool:
    """Whether `pod` (in NAMESPACE) may send (Egress) to or receive (Ingress) from `other`."""
    selecting = [
        policy
        for policy in policies
        if direction in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # not isolated
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(
        (peers not in rule or any(_peer_matches(peer, other, NAMESPACE) for peer in rule[peers]))
        and _port_matches(rule.get("ports", []), port, protocol, target)
        for policy in selecting
        for rule in policy["spec"].get(key, [])
    )


def _strimzi_network_policy(kafka: Manifest) -> Manifest:
    """The NetworkPolicy Strimzi generates for the Kafka nodes, as its documentation states it:
    each listener from its networkPolicyPeers (anyone without), the control plane and
    replication from the cluster's own components and the cluster operator, metrics from anyone."""
    strimzi = {"strimzi.io/cluster": generate.CLUSTER_NAME}
    ingress: list[Manifest] = [
        {
            "ports": [{"port": listener["port"], "protocol": "TCP"}],
            **({"from": listener["networkPolicyPeers"]} if listener.get("networkPolicyPeers") else {}),
        }
        for listener in kafka["spec"]["kafka"]["listeners"]
    ]
    ingress.append(
        {
            "ports": [{"port": 9090, "protocol": "TCP"}, {"port": 9091, "protocol": "TCP"}],
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {**strimzi, "strimzi.io/name": f"{generate.CLUSTER_NAME}-{name}"}
                    }
                }
                for name in ("kafka", "entity-operator", "kafka-exporter")
            ]
            + [
                {
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"strimzi.io/kind": "cluster-operator"}},
                }
            ],
        }
    )
    ingress.append({"ports": [{"port": 9404, "protocol": "TCP"}]})
    return {
        "metadata": {"name": "strimzi-generated"},
        "spec": {
            "podSelector": {"matchLabels": {**strimzi, "strimzi.io/name": f"{generate.CLUSTER_NAME}-kafka"}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _strimzi_pod(name: str, **labels: str) -> Peer:
    return Peer(
        NAMESPACE,
        {
            "strimzi.io/cluster": generate.CLUSTER_NAME,
            "strimzi.io/kind": "Kafka",
            "strimzi.io/name": f"{generate.CLUSTER_NAME}-{name}",
            **labels,
        },
    )


@dataclass
class Network:
    """The namespace's policies (plus Strimzi's) and the pods a flow can start or end at."""

    policies: list[Manifest]
    pods: dict[str, Peer]

    def allows(self, source: str, target: str, port: int, protocol: str = "TCP") -> bool:
        src, dst = self.pods[source], self.pods[target]
        out = src.namespace != NAMESPACE or _allowed_by(
            self.policies, "Egress", src, dst, port, protocol, dst
        )
        into = dst.namespace != NAMESPACE or _allowed_by(
            self.policies, "Ingress", dst, src, port, protocol, dst
        )
        return out and into


def _network(documents: list[Manifest]) -> Network:
    pods: dict[str, Peer] = {}
    for name, deployment in _of_kind(documents, WORKLOAD).items():
        template = deployment["spec"]["template"]
        ports = {port["name"]: port["containerPort"] for port in template["spec"]["containers"][0]["ports"]}
        pods[name] = Peer(NAMESPACE, template["metadata"]["labels"], ports)
    for pool, spec in _of_kind(documents, "KafkaNodePool").items():
        roles = {f"strimzi.io/{role}-role": "true" for role in spec["spec"]["roles"]}
        pods[f"kafka:{pool}"] = _strimzi_pod("kafka", **{"strimzi.io/pool-name": pool}, **roles)
    pods["entity-operator"] = _strimzi_pod("entity-operator")
    pods["kafka-exporter"] = _strimzi_pod("kafka-exporter")
    pods["cluster-operator"] = Peer("strimzi", {"strimzi.io/kind": "cluster-operator"})
    pods["ingress-controller"] = Peer("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    pods["prometheus"] = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
    pods["dns"] = Peer("kube-system", {"k8s-app": "kube-dns"})
    pods["stranger"] = Peer("default", {"app": "something-else"})
    pods["internet"] = Peer(ip="203.0.113.7")
    pods["kubernetes-api"] = Peer(ip="10.96.0.1")
    pods["keda-operator"] = Peer("keda", {"app.kubernetes.io/name": "keda-operator"})
    pods["postgresql"] = Peer(ip=_postgresql_address(documents))
    policies = [*_of_kind(documents, "NetworkPolicy").values(), _strimzi_network_policy(_kafka(documents))]
    return Network(policies, pods)


def _postgresql_address(documents: list[Manifest]) -> str:
    """The PostgreSQL server's address as the build names it (the first of the policy's range;
    a documentation address where the build has no PostgreSQL)."""
    policy = _of_kind(documents, "NetworkPolicy").get("allow-stores-to-postgresql")
    if policy is None:
        return "192.0.2.5"
    (rule,) = policy["spec"]["egress"]
    (peer,) = rule["to"]
    return str(next(iter(ipaddress.ip_network(peer["ipBlock"]["cidr"]))))


ALLOWS = {
    "allow-dns": "every pod -> cluster DNS",
    "allow-services-to-kafka": "services -> Kafka's scram listener",
    "allow-services-to-token-issuers": "services -> the issuers' JWKS (HTTPS)",
    "allow-ingress-controller-to-services": "ingress controller -> the HTTP APIs",
    "allow-prometheus-to-services": "Prometheus -> /metrics on each service's HTTP port",
    "allow-prometheus-to-kafka-metrics": "Prometheus -> the brokers' and the Kafka Exporter's metrics",
    "allow-kafka-to-kafka": "Kafka nodes -> Kafka nodes (KRaft, replication)",
    "allow-strimzi-operands-to-kafka": "entity operator and Kafka Exporter -> Kafka",
    "allow-entity-operator-to-kubernetes-api": "entity operator -> the Kubernetes API",
}
"""Every allow the namespace has, and why: a new flow is a new line here."""
PRODUCTION_ALLOWS = {
    **ALLOWS,
    "allow-stores-to-postgresql": "signals and audit (every replica) -> their shared PostgreSQL",
}
"""Production's: its replicas share PostgreSQL (overlays/production/postgresql.yaml)."""


@pytest.mark.parametrize("build", BUILDS)
def test_the_namespace_denies_every_flow_by_default_and_every_allow_names_its_flow_and_ports(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    policies = _of_kind(builds[build], "NetworkPolicy")
    deny = policies.pop("default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert set(policies) == set(PRODUCTION_ALLOWS if build == "production" else ALLOWS)
    for name, policy in policies.items():
        assert policy["metadata"]["annotations"]["safety-chain/flow"].strip(), (
            f"{name} does not name its flow"
        )
        spec = policy["spec"]
        assert len(spec["policyTypes"]) == 1, f"{name}: one direction per allow"
        direction = spec["policyTypes"][0]
        key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        assert spec.get(key), f"{name}: no rules"
        assert set(spec) == {"podSelector", "policyTypes", key}, f"{name}: one direction per allow"
        for rule in spec[key]:
            assert rule.get("ports"), f"{name}: a rule without ports allows every port"
            assert rule.get(peers) and all(peer for peer in rule[peers]), f"{name}: a rule without peers"


HTTP_PORTS = {"signals": 8001, "consent": 8002, "audit": 8003}
REQUIRED_FLOWS = [
    *((service, "kafka:{broker}", 9093, "TCP") for service in SERVICES),
    *(("ingress-controller", service, port, "TCP") for service, port in HTTP_PORTS.items()),
    *(("prometheus", service, port, "TCP") for service, port in HTTP_PORTS.items()),
    *((service, "dns", 53, protocol) for service in SERVICES for protocol in ("UDP", "TCP")),
    *((service, "internet", 443, "TCP") for service in SERVICES),
    ("kafka:{broker}", "dns", 53, "UDP"),
    ("kafka:{broker}", "kafka:{controller}", 9090, "TCP"),
    ("kafka:{broker}", "kafka:{broker}", 9091, "TCP"),
    ("kafka:{controller}", "kafka:{controller}", 9090, "TCP"),
    ("entity-operator", "kafka:{broker}", 9091, "TCP"),
    ("entity-operator", "kubernetes-api", 443, "TCP"),
    ("entity-operator", "dns", 53, "UDP"),
    ("kafka-exporter", "kafka:{broker}", 9091, "TCP"),
    ("cluster-operator", "kafka:{broker}", 9091, "TCP"),
    ("prometheus", "kafka:{broker}", 9404, "TCP"),
    ("prometheus", "kafka-exporter", 9404, "TCP"),
    ("internet", "kafka:{broker}", 9094, "TCP"),
]
REFUSED_FLOWS = [
    ("stranger", "signals", 8001, "TCP"),  # nothing but the ingress controller and Prometheus
    ("stranger", "kafka:{broker}", 9093, "TCP"),  # the scram listener is for the services only
    ("signals", "consent", 8002, "TCP"),  # no service calls another
    ("audit", "signals", 8001, "TCP"),
    ("signals", "kafka:{broker}", 9091, "TCP"),  # replication is Strimzi's
    ("signals", "internet", 80, "TCP"),  # only HTTPS leaves
    ("kafka:{broker}", "internet", 443, "TCP"),  # the brokers reach nothing outside
    ("kafka-exporter", "kubernetes-api", 443, "TCP"),
    ("prometheus", "kafka:{broker}", 9093, "TCP"),
    ("internet", "signals", 8001, "TCP"),  # the APIs only through the ingress controller
    ("consent", "postgresql", 5432, "TCP"),  # consent has no store
    ("keda-operator", "signals", 8001, "TCP"),  # KEDA reads lag from Kafka, nothing else
    ("keda-operator", "kafka:{broker}", 9091, "TCP"),
]
PRODUCTION_FLOWS = [
    *((service, "postgresql", 5432, "TCP") for service in ("signals", "audit")),
    ("keda-operator", "kafka:{broker}", 9093, "TCP"),  # the consumer lag it scales on
]
"""What production needs besides REQUIRED_FLOWS, and the base must not allow."""


def _resolve(network: Network, flow: tuple[str, str, int, str]) -> list[tuple[str, str, int, str]]:
    """A flow between pool roles, for every pool of the build that has the role."""
    pools = {
        role: [
            name for name, pod in network.pods.items() if pod.labels.get(f"strimzi.io/{role}-role") == "true"
        ]
        for role in ("broker", "controller")
    }
    sources = pools.get(flow[0][7:-1], []) if flow[0].startswith("kafka:") else [flow[0]]
    targets = pools.get(flow[1][7:-1], []) if flow[1].startswith("kafka:") else [flow[1]]
    assert sources and targets, flow
    return [(source, target, flow[2], flow[3]) for source in sources for target in targets]


@pytest.mark.parametrize("build", BUILDS)
def test_the_flows_the_system_needs_are_allowed_and_no_others(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    network = _network(builds[build])
    required, refused = (
        (REQUIRED_FLOWS + PRODUCTION_FLOWS, REFUSED_FLOWS)
        if build == "production"
        else (REQUIRED_FLOWS, REFUSED_FLOWS + PRODUCTION_FLOWS)
    )
    for flow in required:
        for source, target, port, protocol in _resolve(network, flow):
            assert network.allows(source, target, port, protocol), f"{source} -> {target}:{port}/{protocol}"
    for flow in refused:
        for source, target, port, protocol in _resolve(network, flow):
            assert not network.allows(source, target, port, protocol), (
                f"{source} -> {target}:{port}/{protocol}"
            )


@pytest.mark.parametrize("build", BUILDS)
def test_prometheus_scrapes_metrics_on_the_port_the_policy_opens(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    network = _network(builds[build])
    for name, deployment in _of_kind(builds[build], WORKLOAD).items():
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        env = {item["name"]: item["value"] for item in template["spec"]["containers"][0]["env"]}
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == env["SC_HTTP_PORT"]
        assert network.allows("prometheus", name, int(env["SC_HTTP_PORT"]))


# ---------------------------------------------------------------------------------------- Ingress


def _api_paths(service: str) -> set[str]:
    """Every route the service's routers declare (its API and, for audit, the console)."""
    package = importlib.import_module(f"services.{service}")
    routers: dict[int, APIRouter] = {}
    for module in pkgutil.walk_packages(package.__path__, f"services.{service}."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, APIRouter):
                routers[id(value)] = value
    return {str(getattr(route, "path", "")) for router in routers.values() for route in router.routes}


def _routed(paths: list[Manifest], path: str) -> bool:
    return any(
        path == rule["path"]
        if rule["pathType"] == "Exact"
        else path == rule["path"] or path.startswith(rule["path"].rstrip("/") + "/")
        for rule in paths
    )


@pytest.mark.parametrize("build", BUILDS)
def test_the_ingress_serves_each_api_over_tls_on_its_own_host(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    (ingress,) = _of_kind(builds[build], "Ingress").values()
    services = _of_kind(builds[build], "Service")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    backends: dict[str, str] = {}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls["hosts"], f"{rule['host']} without TLS"
        (service,) = {path["backend"]["service"]["name"] for path in rule["http"]["paths"]}
        for path in rule["http"]["paths"]:
            port = path["backend"]["service"]["port"]["name"]
            assert port in {p["name"] for p in services[service]["spec"]["ports"]}
        backends[service] = rule["host"]
    assert set(backends) == set(SERVICES)
    assert {p["port"] for name in SERVICES for p in services[name]["spec"]["ports"]} == {8001, 8002, 8003}


@pytest.mark.parametrize("name", SERVICES)
def test_the_ingress_routes_every_api_route_and_never_health_or_metrics(
    builds: dict[str, list[Manifest]], name: str
) -> None:
    (ingress,) = _of_kind(builds["base"], "Ingress").values()
    (rule,) = [
        rule
        for rule in ingress["spec"]["rules"]
        if rule["http"]["paths"][0]["backend"]["service"]["name"] == name
    ]
    paths = rule["http"]["paths"]
    routes = _api_paths(name)
    assert routes, name
    for route in routes:
        assert _routed(paths, route), f"{name}: {route} is not routed"
    for path in (
        "/docs",
        "/openapi.json",
        *(("/console/", "/console/static/app.css") if name == "audit" else ()),
    ):
        assert _routed(paths, path), f"{name}: {path}"
    for internal in ("/metrics", "/healthz", "/readyz", "/", "/redoc"):
        assert not _routed(paths, internal), f"{name}: {internal} must stay inside the cluster"


# ------------------------------------------------------------------------------------------ images


def _images(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _images(item)


_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def test_every_container_image_in_the_production_overlay_is_pinned_by_digest(
    builds: dict[str, list[Manifest]],
) -> None:
    images = list(_images(builds["production"]))
    assert len(images) >= len(SERVICES)
    for image in images:
        assert _DIGEST.fullmatch(image), f"{image} is not pinned by digest"
    assert {image for _, _, container in _containers(builds["production"]) for image in [container["image"]]}
    # a placeholder digest is marked as one, for the operator to replace
    text = (PRODUCTION / "kustomization.yaml").read_text(encoding="utf-8")
    digest = _load(PRODUCTION / "kustomization.yaml")["images"][0]["digest"]
    if set(digest.removeprefix("sha256:")) == {"0"}:
        assert re.search(r"#\s*PLACEHOLDER", text)


# ----------------------------------------------------------------------------------------- Strimzi


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_manifests_state_the_strimzi_range_that_runs_kafka_4_1(builds: dict[str, list[Manifest]]) -> None:
    low, high = validate.STRIMZI_RANGE
    assert (low, high) == ("0.50.1", "1.0.x")
    for build in BUILDS:
        kafka = _kafka(builds[build])
        assert kafka["spec"]["kafka"]["version"].startswith("4.1.")
        assert kafka["spec"]["kafka"]["metadataVersion"].startswith("4.1-")
        assert kafka["metadata"]["annotations"]["safety-chain/strimzi-range"] == ">=0.50.1 <1.1.0"
    for version in validate.STRIMZI_API_SHA256:
        assert _version(low) <= _version(version) < (1, 1, 0), (
            f"validated against {version}, outside the range"
        )
    header = (BASE / "kafka.yaml").read_text(encoding="utf-8").split("apiVersion:")[0]
    assert re.search(r"Strimzi: 0\.50\.1 up to 1\.0\.x", header)
    assert "Strimzi 1.1 dropped Kafka 4.1" in header
    for path in K8S.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"0\.49 or later|0\.4\d\+", text), f"{path}: an older Strimzi range"


@pytest.mark.parametrize("build", BUILDS)
def test_organisations_outside_the_cluster_connect_over_tls_each_as_its_own_user(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    external = [
        listener
        for listener in _listeners(builds[build]).values()
        if listener["type"] in ("loadbalancer", "ingress")
    ]
    assert len(external) == 1
    (listener,) = external
    assert listener["tls"] is True
    mechanism = listener["authentication"]["type"]
    assert mechanism in ("scram-sha-512", "tls")
    users = _of_kind(builds[build], "KafkaUser")
    outside = [
        user
        for user in users.values()
        if user["metadata"]["labels"]["safety-chain/organisation-kind"] in ("municipality", "partner")
    ]
    assert outside
    organisations = [user["metadata"]["annotations"]["safety-chain/organisation"] for user in outside]
    assert len(set(organisations)) == len(organisations), "one KafkaUser per organisation"
    for user in outside:
        # a user authenticates on the external listener only with the mechanism it has
        assert user["spec"]["authentication"]["type"] == mechanism, user["metadata"]["name"]
    # the services stay on the internal listener, which only their pods may reach
    scram = _listeners(builds[build])["scram"]
    assert scram["type"] == "internal" and scram["tls"] is True and scram["networkPolicyPeers"]


def test_production_opens_the_external_listener_to_the_organisations_networks_under_its_own_names(
    builds: dict[str, list[Manifest]],
) -> None:
    configuration = _listeners(builds["production"])["external"]["configuration"]
    ranges = [ipaddress.ip_network(cidr) for cidr in configuration["loadBalancerSourceRanges"]]
    assert ranges and all(network.prefixlen >= 8 for network in ranges), "never the whole internet"
    assert configuration["brokerCertChainAndKey"]["secretName"]
    (bootstrap,) = configuration["bootstrap"]["alternativeNames"]
    assert configuration["advertisedHostTemplate"] == f"broker-{{nodeId}}.{bootstrap}"


@pytest.mark.parametrize("build", BUILDS)
def test_the_kafka_exporter_watches_every_declared_topic_and_consumer_group(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    exporter = _kafka(builds[build])["spec"]["kafkaExporter"]
    topics = re.compile(exporter["topicRegex"])
    groups = re.compile(exporter["groupRegex"])
    registry = generate.load_organisations(REPO_ROOT / "config")
    for spec in generate.declared_topics(registry):
        assert topics.fullmatch(spec.name), f"the Kafka Exporter misses {spec.name}"
    assert not topics.fullmatch("__consumer_offsets") and not topics.fullmatch("__transaction_state")
    for owner in [*SERVICES, *(org.id for org in registry if org.kind == "partner")]:
        assert groups.fullmatch(owner), owner


@pytest.mark.parametrize("build", BUILDS)
def test_the_brokers_export_jmx_metrics_with_the_rules_of_the_config_map_in_the_build(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    metrics = _kafka(builds[build])["spec"]["kafka"]["metricsConfig"]
    assert metrics["type"] == "jmxPrometheusExporter"
    reference = metrics["valueFrom"]["configMapKeyRef"]
    config_map = _of_kind(builds[build], "ConfigMap")[reference["name"]]  # its name is not hashed
    rules = yaml.safe_load(config_map["data"][reference["key"]])
    assert rules["lowercaseOutputName"] is True
    assert rules["rules"] and all({"pattern", "name"} <= set(rule) for rule in rules["rules"])
    exported = {rule["name"] for rule in rules["rules"]}
    for needed in ("kafka_server_replicamanager_$1", "kafka_controller_kafkacontroller_$1"):
        assert needed in exported, needed  # under-replicated and offline partitions


@pytest.mark.parametrize("build", BUILDS)
def test_every_node_pool_spreads_its_nodes_over_hosts_and_zones(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    pools = _of_kind(builds[build], "KafkaNodePool")
    brokers = sum(pool["spec"]["replicas"] for pool in pools.values() if "broker" in pool["spec"]["roles"])
    controllers = sum(
        pool["spec"]["replicas"] for pool in pools.values() if "controller" in pool["spec"]["roles"]
    )
    assert brokers >= generate.TOPIC_REPLICAS
    assert controllers >= 3 and controllers % 2 == 1, "a KRaft quorum that survives one loss"
    for name, pool in pools.items():
        own = {"strimzi.io/cluster": generate.CLUSTER_NAME, "strimzi.io/pool-name": name}
        pod = pool["spec"]["template"]["pod"]
        (anti,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert anti["topologyKey"] == "kubernetes.io/hostname"
        assert anti["labelSelector"] == {"matchLabels": own}
        (spread,) = pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["labelSelector"] == {"matchLabels": own} and spread["maxSkew"] == 1
        expected = "DoNotSchedule" if build == "production" else "ScheduleAnyway"
        assert spread["whenUnsatisfiable"] == expected, name


# ------------------------------------------------------------------------------------------- docs


def test_the_deployment_guide_names_every_allowed_flow_and_the_pinned_tools(
    builds: dict[str, list[Manifest]],
) -> None:
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(allow-[a-z0-9-]+)` \| (.*) \|$", guide, flags=re.MULTILINE))
    allows = {build: set(_of_kind(builds[build], "NetworkPolicy")) - {"default-deny"} for build in BUILDS}
    # one row per allow of any build (the base's and each overlay's own), and none that no build has
    assert set(rows) == set().union(*allows.values())
    for name, flow in rows.items():
        assert name in allows["production"], f"{name}: production lacks it; the table cannot say so"
        assert flow.startswith("production only: ") == (name not in allows["base"]), (
            f"{name}: its row must begin 'production only: ' exactly when the base lacks it"
        )
    # every Secret a service mounts that the operator creates (Strimzi makes the cluster CA's and
    # one per KafkaUser) is named, in either build
    for build in BUILDS:
        made_by_strimzi = {f"{generate.CLUSTER_NAME}-cluster-ca-cert", *_of_kind(builds[build], "KafkaUser")}
        for _, pod, _ in _containers(builds[build]):
            for volume in pod["volumes"]:
                sources = [volume, *volume.get("projected", {}).get("sources", [])]
                for secret in (source["secret"] for source in sources if "secret" in source):
                    secret_name = secret.get("secretName") or secret["name"]
                    assert secret_name in made_by_strimzi or f"`{secret_name}`" in guide, (
                        f"{build}: the guide does not name the Secret {secret_name}"
                    )
    for pinned in (
        validate.KUSTOMIZE_VERSION,
        f"kubernetes-validate {validate.KUBERNETES_VALIDATE_VERSION}",
        *validate.STRIMZI_API_SHA256,
        *(version.rsplit(".", 1)[0] for version in validate.KUBERNETES_VERSIONS),
        validate.MAVEN_DEPENDENCY_PLUGIN.rsplit(":", 1)[1],
        validate.KEDA_MODULE,
        *validate.KEDA_MODULE_SHA256,
    ):
        assert pinned in guide, pinned
    keda_low, keda_high = validate.KEDA_RANGE
    assert f"KEDA {keda_low} up to {keda_high}" in guide
    low, high = validate.STRIMZI_RANGE
    assert f"Strimzi {low} up to {high}" in guide
    for name in SERVICES:
        threshold, period, minutes = _documented_budget(name)
        assert f"| {name} | {threshold} x {period} s = {minutes} minutes |" in guide, name
