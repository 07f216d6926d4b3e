"""deploy/k8s: the kustomize base as kustomize builds it, its Strimzi resources, the services'
StatefulSets and the generator behind them. The production overlay's own checks, and the schema
validation of both builds, are in test_k8s_platform.py and test_k8s_schemas.py."""

from __future__ import annotations

import ast
import importlib
import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import generate
from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.contracts.crypto.keys import SERVICE_KEYS
from shared.contracts.registry import OrganisationKind
from shared.contracts.topics import (
    CENTRAL_TOPICS,
    EXCHANGE_RECEIPTS,
    PROCESSED_PARTITIONS,
    SIGNALS_INTAKE,
    SUBJECTS_KEYS,
    audited_topics_pattern,
    partner_topic,
)
from shared.plumbing.kafka import sasl_credentials
from shared.plumbing.settings import PROJECT_ROOT, CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s" / "base"
SERVICES = ("signals", "consent", "audit")

Manifest = dict[str, Any]


def _load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _kustomization(folder: Path) -> Manifest:
    loaded = _load(folder / "kustomization.yaml")
    assert len(loaded) == 1
    return loaded[0]


def _resources(folder: Path) -> list[Manifest]:
    """The documents a kustomization lists (resources, recursively), without building it."""
    documents: list[Manifest] = []
    for entry in _kustomization(folder).get("resources", []):
        path = folder / entry
        documents.extend(_resources(path) if path.is_dir() else _load(path))
    return documents


@pytest.fixture(scope="module")
def manifests(builds: dict[str, list[Manifest]]) -> list[Manifest]:
    """The base, as `kustomize build` makes it (config component, namespace and images applied)."""
    return builds["base"]


def _of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


@pytest.fixture(scope="module")
def registry() -> list[generate.Organisation]:
    return generate.load_organisations(REPO_ROOT / "config")


@pytest.fixture(scope="module")
def topic_names(manifests: list[Manifest]) -> set[str]:
    return {
        doc["spec"].get("topicName", doc["metadata"]["name"])
        for doc in _of_kind(manifests, "KafkaTopic").values()
    }


@pytest.fixture(scope="module")
def users(manifests: list[Manifest]) -> dict[str, Manifest]:
    return _of_kind(manifests, "KafkaUser")


@pytest.fixture(scope="module")
def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """What runs each service: its StatefulSet (stable pod names, which are the instance ids)."""
    return _of_kind(manifests, generate.WORKLOAD_KIND)


def _acls(user: Manifest) -> list[Manifest]:
    assert user["spec"]["authorization"]["type"] == "simple"
    acls = user["spec"]["authorization"]["acls"]
    assert isinstance(acls, list)
    return acls


def _matches(acl: Manifest, name: str) -> bool:
    resource = acl["resource"]
    if resource.get("patternType", "literal") == "prefix":
        return bool(name.startswith(resource["name"]))
    return bool(resource["name"] == name or resource["name"] == "*")


def _allowed(user: Manifest, resource_type: str, name: str, operation: str) -> bool:
    return any(
        acl["resource"]["type"] == resource_type
        and _matches(acl, name)
        and (operation in acl["operations"] or "All" in acl["operations"])
        and acl.get("type", "allow") == "allow"
        for acl in _acls(user)
    )


def _container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def _env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


# ------------------------------------------------------------------------------------ structure


def test_every_manifest_has_an_api_version_a_kind_and_a_name(manifests: list[Manifest]) -> None:
    component = K8S / _kustomization(K8S)["components"][0]
    patches = [component / patch["path"] for patch in _kustomization(component)["patches"]]
    for doc in [*manifests, *(doc for patch in patches for doc in _load(patch))]:
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), doc


def test_strimzi_resources_belong_to_the_one_kafka_cluster(manifests: list[Manifest]) -> None:
    clusters = _of_kind(manifests, "Kafka")
    assert list(clusters) == [generate.CLUSTER_NAME]
    for doc in manifests:
        if doc["apiVersion"].startswith("kafka.strimzi.io/") and doc["kind"] != "Kafka":
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == generate.CLUSTER_NAME, doc["metadata"]


def test_the_kafka_cluster_is_kraft_with_a_scram_listener_on_9093_and_simple_authorization(
    manifests: list[Manifest],
) -> None:
    kafka = _of_kind(manifests, "Kafka")[generate.CLUSTER_NAME]["spec"]["kafka"]
    listeners = {listener["name"]: listener for listener in kafka["listeners"]}
    assert listeners["scram"]["port"] == 9093
    assert listeners["scram"]["authentication"]["type"] == "scram-sha-512"
    assert all(listener.get("authentication") for listener in listeners.values()), "no anonymous listener"
    assert kafka["authorization"]["type"] == "simple"
    assert kafka["config"]["auto.create.topics.enable"] is False
    pools = _of_kind(manifests, "KafkaNodePool")
    assert pools, "KRaft needs a KafkaNodePool"
    roles = {role for pool in pools.values() for role in pool["spec"]["roles"]}
    assert roles == {"broker", "controller"}
    nodes = sum(pool["spec"]["replicas"] for pool in pools.values())
    assert nodes >= generate.TOPIC_REPLICAS


@pytest.mark.parametrize("build", ["base", "production"])
def test_kustomize_mounts_the_hashed_config_map_in_every_deployment_of_every_build(
    builds: dict[str, list[Manifest]], build: str
) -> None:
    documents = builds[build]
    config_maps = [
        doc["metadata"]["name"]
        for doc in documents
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(generate.CONFIG_MAP_NAME)
    ]
    assert len(config_maps) == 1 and config_maps[0].startswith(f"{generate.CONFIG_MAP_NAME}-")
    deployments = [doc for doc in documents if doc["kind"] == generate.WORKLOAD_KIND]
    assert {doc["metadata"]["name"] for doc in deployments} == set(SERVICES)
    namespaced = [doc for doc in documents if doc["kind"] != "Namespace"]
    assert all(doc["metadata"].get("namespace") == "safety-chain" for doc in namespaced)
    for deployment in deployments:
        volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes[generate.CONFIG_VOLUME_NAME]["configMap"]["name"] == config_maps[0]


# --------------------------------------------------------------------------------------- topics


def test_every_declared_topic_has_a_strimzi_kafkatopic_with_its_partitions_and_configs(
    manifests: list[Manifest], registry: list[generate.Organisation]
) -> None:
    by_topic = {doc["spec"]["topicName"]: doc for doc in _of_kind(manifests, "KafkaTopic").values()}
    declared = [*CENTRAL_TOPICS, *(partner_topic(org.id) for org in registry if org.kind == "partner")]
    assert len(declared) > len(CENTRAL_TOPICS), "the registry names partners"
    for spec in declared:
        assert spec.name in by_topic, f"no KafkaTopic for {spec.name}"
        topic = by_topic[spec.name]["spec"]
        assert topic["partitions"] == spec.partitions, spec.name
        assert topic.get("config", {}) == spec.config, spec.name
        assert topic["replicas"] == generate.TOPIC_REPLICAS


def test_there_is_no_kafkatopic_the_source_does_not_declare(
    topic_names: set[str], registry: list[generate.Organisation]
) -> None:
    declared = {spec.name for spec in generate.declared_topics(registry)}
    assert topic_names == declared


# ---------------------------------------------------------------------------------------- users


def test_every_service_municipality_and_partner_has_a_scram_kafkauser(
    users: dict[str, Manifest], registry: list[generate.Organisation]
) -> None:
    # the platform operator works through the HTTP APIs only: no Kafka principal
    expected = {org.kafka_user for org in registry if org.kind != "platform"} | set(SERVICES)
    assert set(users) == expected
    for user in users.values():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_each_kafkauser_acl_references_only_topics_that_exist(
    users: dict[str, Manifest], topic_names: set[str]
) -> None:
    for name, user in users.items():
        for acl in _acls(user):
            if acl["resource"]["type"] != "topic":
                continue
            assert acl["resource"]["name"] != "*", f"{name} has a wildcard topic ACL"
            assert any(_matches(acl, topic) for topic in topic_names), (
                f"{name}: {acl['resource']} matches no topic"
            )


def test_a_municipality_may_only_write_the_intake_topic(
    users: dict[str, Manifest], registry: list[generate.Organisation], topic_names: set[str]
) -> None:
    municipalities = [org for org in registry if org.kind == "municipality"]
    assert municipalities
    for org in municipalities:
        user = users[org.kafka_user]
        assert _allowed(user, "topic", SIGNALS_INTAKE.name, "Write")
        for topic in topic_names:
            assert not _allowed(user, "topic", topic, "Read"), (org.id, topic)
            if topic != SIGNALS_INTAKE.name:
                assert not _allowed(user, "topic", topic, "Write"), (org.id, topic)


def test_a_partner_reads_only_its_own_topic_and_writes_only_receipts(
    users: dict[str, Manifest], registry: list[generate.Organisation], topic_names: set[str]
) -> None:
    partners = [org for org in registry if org.kind == "partner"]
    assert len(partners) >= 2
    for org in partners:
        user = users[org.kafka_user]
        own = partner_topic(org.id).name
        assert _allowed(user, "topic", own, "Read") and _allowed(user, "topic", own, "Describe")
        assert _allowed(user, "group", org.id, "Read")
        assert _allowed(user, "topic", EXCHANGE_RECEIPTS.name, "Write")
        for topic in topic_names - {own}:
            assert not _allowed(user, "topic", topic, "Read"), (org.id, topic)
        for topic in topic_names - {EXCHANGE_RECEIPTS.name}:
            assert not _allowed(user, "topic", topic, "Write"), (org.id, topic)


def test_no_principal_may_join_another_organisations_consumer_group(
    users: dict[str, Manifest], registry: list[generate.Organisation]
) -> None:
    owners = {org.id for org in registry} | set(SERVICES)
    principals = [org for org in registry if org.kind != "platform"]
    for org in [*principals, *(generate.Organisation(s, OrganisationKind.SERVICE, s, s) for s in SERVICES)]:
        for other in owners - {org.id}:
            for group in (other, f"{other}.worker"):
                assert not _allowed(users[org.kafka_user], "group", group, "Read"), (org.id, group)


def test_a_partner_whose_id_is_a_prefix_of_another_cannot_join_the_others_group() -> None:
    organisation = generate.Organisation("zvh-amsterdam", OrganisationKind.PARTNER, "ZVH", "zvh-amsterdam")
    user = generate.kafka_user(organisation, generate.acls_of(organisation, [organisation]))
    assert _allowed(user, "group", "zvh-amsterdam", "Read")
    assert _allowed(user, "group", "zvh-amsterdam.cli", "Read")
    for foreign in ("zvh-amsterdam-noord", "zvh-amsterdam-noord.cli", "zvh-amsterdamx"):
        assert not _allowed(user, "group", foreign, "Read"), foreign


def test_signals_reads_intake_and_its_verdicts_and_writes_intake_verdicts_keys_and_erasure(
    users: dict[str, Manifest], topic_names: set[str]
) -> None:
    user = users["signals"]
    writes = {topic for topic in topic_names if _allowed(user, "topic", topic, "Write")}
    reads = {topic for topic in topic_names if _allowed(user, "topic", topic, "Read")}
    assert writes == {
        "signals.intake.v1",  # the HTTP intake submits on behalf of the authenticated caller
        "signals.accepted.v1",
        "signals.rejected.v1",
        "subjects.keys.v1",
        "subjects.erasure.v1",
    }
    # every replica follows the verdicts, to answer the HTTP callers that reached it
    assert reads == {"signals.intake.v1", "signals.accepted.v1", "signals.rejected.v1"}
    assert _allowed(user, "group", "signals", "Read")
    assert _allowed(user, "transactionalId", "signals-0", "Write")


def test_consent_delivers_to_every_partner_topic_in_transactions_but_reads_none_of_them(
    users: dict[str, Manifest], registry: list[generate.Organisation], topic_names: set[str]
) -> None:
    user = users["consent"]
    for org in registry:
        if org.kind == "partner":
            assert _allowed(user, "topic", partner_topic(org.id).name, "Write")
            assert not _allowed(user, "topic", partner_topic(org.id).name, "Read")
    reads = {topic for topic in topic_names if _allowed(user, "topic", topic, "Read")}
    assert reads == {
        "signals.accepted.v1",
        "subjects.erasure.v1",  # erasures become notices to the partners concerned
        "subjects.keys.v1",
        "consent.agreements.v1",
        "consent.directives.v1",
        "consent.proposals.v1",  # widening agreement changes waiting for approval
        "consent.recipients.v1",
    }
    writes = {topic for topic in topic_names if _allowed(user, "topic", topic, "Write")}
    partner_topics = {partner_topic(org.id).name for org in registry if org.kind == "partner"}
    assert writes == {
        "exchange.decisions.v1",
        "signals.rejected.v1",  # its dead letters, written in the same transaction
        "consent.agreements.v1",
        "consent.directives.v1",
        "consent.proposals.v1",
        "consent.recipients.v1",
        *partner_topics,
    }
    assert _allowed(user, "transactionalId", "consent-0", "Write")
    assert _allowed(user, "transactionalId", "consent-0", "Describe")
    assert _allowed(user, "group", "consent", "Read")


def test_audit_reads_exactly_the_topics_it_logs_and_its_checkpoints_and_writes_only_checkpoints(
    users: dict[str, Manifest], topic_names: set[str]
) -> None:
    user = users["audit"]
    subscribed = re.compile(audited_topics_pattern(""))
    audited = {topic for topic in topic_names if subscribed.fullmatch(topic)}
    assert {"exchange.receipts.v1", "consent.agreements.v1", "subjects.erasure.v1"} <= audited
    assert any(topic.startswith("partner.") for topic in audited)
    reads = {topic for topic in topic_names if _allowed(user, "topic", topic, "Read")}
    assert reads == audited | {"audit.checkpoints.v1"}  # its own checkpoints, for verify
    # a pattern subscription sees only the topics it may Describe
    assert all(_allowed(user, "topic", topic, "Describe") for topic in audited)
    writes = {topic for topic in topic_names if _allowed(user, "topic", topic, "Write")}
    # its signed tree heads, and the record of every read of the log (logged like any fact)
    assert writes == {"audit.checkpoints.v1", "audit.reads.v1"}
    assert _allowed(user, "group", "audit", "Read")


def test_audit_can_neither_read_nor_see_the_subject_data_keys(users: dict[str, Manifest]) -> None:
    for operation in ("Read", "Describe", "Write"):
        assert not _allowed(users["audit"], "topic", SUBJECTS_KEYS.name, operation), operation


def test_only_signals_writes_the_data_keys_and_only_consent_reads_them(
    users: dict[str, Manifest],
) -> None:
    writers = {name for name, user in users.items() if _allowed(user, "topic", SUBJECTS_KEYS.name, "Write")}
    readers = {name for name, user in users.items() if _allowed(user, "topic", SUBJECTS_KEYS.name, "Read")}
    assert writers == {"signals"}
    assert readers == {"consent"}


def test_only_signals_writes_accepted_signals(users: dict[str, Manifest]) -> None:
    writers = {
        name for name, user in users.items() if _allowed(user, "topic", "signals.accepted.v1", "Write")
    }
    assert writers == {"signals"}


@pytest.mark.parametrize("topic", [SUBJECTS_KEYS.name, "consent.agreements.v1", "consent.directives.v1"])
def test_consent_follows_its_state_topics_without_a_consumer_group(
    users: dict[str, Manifest], topic: str
) -> None:
    # services/consent/state.py: AIOKafkaConsumer.assign(...) from the start, no group_id; it
    # needs the partitions (Describe), their end offsets (Describe) and the records (Read).
    user = users["consent"]
    assert _allowed(user, "topic", topic, "Describe")
    assert _allowed(user, "topic", topic, "Read")


def test_consent_topic_acls_name_their_topics_rather_than_a_prefix(users: dict[str, Manifest]) -> None:
    # A prefix would also grant every future consent.* topic.
    for acl in _acls(users["consent"]):
        if acl["resource"]["type"] == "topic" and acl["resource"]["name"].startswith("consent."):
            assert acl["resource"]["patternType"] == "literal", acl


@pytest.mark.parametrize("name", ["signals", "consent"])
def test_the_transactional_id_of_each_replica_is_allowed_for_its_own_service_only(
    users: dict[str, Manifest], deployments: dict[str, Manifest], name: str
) -> None:
    # shared/plumbing/transactional.py: transactional.id is `<service>-<instance id>`, its group
    # `<service>`; the instance id of a StatefulSet's pod is its name, `<service>-<ordinal>`, for
    # every ordinal up to the most replicas that get a partition
    container = _container(deployments[name])
    for ordinal in range(PROCESSED_PARTITIONS):
        instance = _settings_of(name, container, host_name=f"{name}-{ordinal}").instance_id
        transactional_id = f"{name}-{instance}"
        assert _allowed(users[name], "transactionalId", transactional_id, "Write")
        assert _allowed(users[name], "transactionalId", transactional_id, "Describe")
        for other, user in users.items():
            if other != name:
                assert not _allowed(user, "transactionalId", transactional_id, "Write"), other
    assert _allowed(users[name], "group", name, "Read")


# ---------------------------------------------------------------------------------- deployments


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_probes_healthz_for_liveness_and_readyz_for_readiness_on_its_container_port(
    deployments: dict[str, Manifest], name: str
) -> None:
    container = _container(deployments[name])
    ports = {port.get("name"): port["containerPort"] for port in container["ports"]}
    http_port = int(_env(container)["SC_HTTP_PORT"])
    assert http_port in ports.values()

    def probed_port(probe: str, path: str) -> int:
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        port = get["port"]
        return int(ports[port]) if isinstance(port, str) else int(port)

    assert probed_port("livenessProbe", "/healthz") == http_port
    assert probed_port("readinessProbe", "/readyz") == http_port


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_runs_its_module_from_the_shared_image_in_production_mode(
    deployments: dict[str, Manifest], manifests: list[Manifest], name: str
) -> None:
    container = _container(deployments[name])
    assert re.fullmatch(r"ghcr\.io/safety-chain/safety-chain[:@].+", container["image"])
    assert container["command"] == ["python", "-m", f"services.{name}"]
    env = _env(container)
    assert env["SC_ENVIRONMENT"] == "production"
    assert env["SC_LOG_FORMAT"] == "json"
    assert env["SC_HTTP_HOST"] == "0.0.0.0"
    kafka = _of_kind(manifests, "Kafka")[generate.CLUSTER_NAME]["spec"]["kafka"]
    scram_port = next(listener["port"] for listener in kafka["listeners"] if listener["name"] == "scram")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{generate.CLUSTER_NAME}-kafka-bootstrap:{scram_port}"
    assert env["SC_KAFKA_SASL_USERNAME"] == name
    assert "SC_KAFKA_SASL_PASSWORD" not in env, "a mounted file, never the environment"


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_reads_its_kafka_password_from_the_file_mounted_from_its_kafkauser_secret(
    deployments: dict[str, Manifest], users: dict[str, Manifest], name: str
) -> None:
    """Strimzi's User Operator writes the password of KafkaUser <name> into the Secret <name>
    (key `password`); the Deployment mounts that one key read-only and names the file."""
    deployment = deployments[name]
    container = _container(deployment)
    env = _env(container)
    assert name in users and users[name]["spec"]["authentication"]["type"] == "scram-sha-512"
    path = Path(env["SC_KAFKA_SASL_PASSWORD_FILE"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == name
    assert volume["secret"]["items"] == [{"key": "password", "path": path.name}]
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by others"


def test_the_services_settings_read_the_kafka_password_from_a_file(tmp_path: Path) -> None:
    """The contract the Deployments rely on: SC_KAFKA_SASL_PASSWORD_FILE names a file holding
    the password, accepted in production instead of SC_KAFKA_SASL_PASSWORD."""
    secret = tmp_path / "password"
    secret.write_text("from-the-mounted-file\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for variable in list(os.environ):
            if variable.startswith(("SC_", "KAFKA_")):
                patch.delenv(variable)
        patch.setenv("SC_ENVIRONMENT", "production")
        patch.setenv("KAFKA_BOOTSTRAP_SERVERS", "safety-chain-kafka-bootstrap:9093")
        patch.setenv("SC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        patch.setenv("SC_KAFKA_SASL_USERNAME", "signals")
        patch.setenv("SC_KAFKA_SASL_PASSWORD_FILE", str(secret))
        settings = SignalsSettings()
    assert sasl_credentials(settings) == ("signals", "from-the-mounted-file")


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_authenticates_over_tls_trusting_the_cluster_ca_it_mounts(
    deployments: dict[str, Manifest], name: str
) -> None:
    container = _container(deployments[name])
    env = _env(container)
    assert env["SC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["SC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # SC_KAFKA_SSL_CAFILE is ca.crt of the Secret in which Strimzi publishes the cluster CA
    # (the config volume comes from the kustomize component, not from this manifest)
    volumes = {volume["name"]: volume for volume in deployments[name]["spec"]["template"]["spec"]["volumes"]}
    secrets = {
        mount["mountPath"]: volumes.get(mount["name"], {}).get("secret", {})
        for mount in container["volumeMounts"]
    }
    ca_files = {
        f"{path}/{item['path']}"
        for path, secret in secrets.items()
        if secret.get("secretName") == f"{generate.CLUSTER_NAME}-cluster-ca-cert"
        for item in secret.get("items", [])
        if item["key"] == "ca.crt"
    }
    assert env["SC_KAFKA_SSL_CAFILE"] in ca_files


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_runs_non_root_on_a_read_only_root_filesystem_with_limits(
    deployments: dict[str, Manifest], name: str
) -> None:
    pod = deployments[name]["spec"]["template"]["spec"]
    container = _container(deployments[name])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_reads_config_from_the_generated_config_map(
    deployments: dict[str, Manifest], name: str
) -> None:
    deployment = deployments[name]
    container = _container(deployment)
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    config = mounts[_env(container)["SC_CONFIG_DIR"]]
    assert config["name"] == generate.CONFIG_VOLUME_NAME
    assert config["readOnly"] is True
    # the generated component adds that volume to every StatefulSet its selector picks
    key, _, value = generate.WORKLOAD_SELECTOR.partition("=")
    assert deployment["metadata"]["labels"][key] == value


def test_the_config_volume_carries_the_registry_the_token_issuers_and_every_agreement() -> None:
    component = K8S / "config"
    (patch,) = _load(component / "config-volume.yaml")
    (volume,) = patch["spec"]["template"]["spec"]["volumes"]
    paths = {item["path"] for item in volume["configMap"]["items"]}
    agreements = {f"agreements/{path.name}" for path in (REPO_ROOT / "config" / "agreements").glob("*.yaml")}
    assert paths == {"organisations.yaml", "issuers.yaml", "revoked-tokens.txt", *agreements}


# The private key files each service reads (shared/contracts/crypto/keys.py layout), as the brief for the
# deployment states them; the tests below also derive them from the services' code and key scopes.
KEY_FILES = {
    "signals": {
        "signals.ed25519",
        "signals.x25519",
        "subject-pseudonyms.secret",
        "key-encryption-key.secret",
    },
    "consent": {"consent.ed25519", "consent.x25519", "partner-pseudonyms.secret"},
    "audit": {"audit.ed25519", "subject-pseudonyms.secret"},
}
_KEY_RING_FILES = {
    "secret": ".secret",
    "ed25519_private": ".ed25519",
    "x25519_private": ".x25519",
}


def _key_files_read_by(service: str) -> set[str]:
    """Every private `keys.<method>(<name>)` call on the KeyRing in services/<service>/, as file
    names (public lookups read no private file)."""
    found: set[str] = set()
    for path in sorted((REPO_ROOT / "services" / service).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "keys"
                and node.func.attr in _KEY_RING_FILES
            ):
                continue
            (argument,) = node.args
            if isinstance(argument, ast.Constant):
                owner = str(argument.value)
            else:
                assert isinstance(argument, ast.Name), ast.dump(argument)
                owner = str(getattr(importlib.import_module(f"services.{service}.{path.stem}"), argument.id))
            found.add(owner + _KEY_RING_FILES[node.func.attr])
    return found


@pytest.mark.parametrize("name", SERVICES)
def test_the_key_files_listed_for_each_service_are_the_ones_its_code_reads(name: str) -> None:
    assert _key_files_read_by(name) == KEY_FILES[name]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_key_ring_is_scoped_to_exactly_the_listed_files(name: str) -> None:
    assert set(SERVICE_KEYS[name].files) == KEY_FILES[name]


def _mounted_key_files(deployment: Manifest) -> dict[str, str]:
    """File name -> Secret it comes from, for the volume mounted at SC_KEYS_DIR (if any)."""
    container = _container(deployment)
    keys_dir = _env(container)["SC_KEYS_DIR"]
    mounts = [mount for mount in container["volumeMounts"] if mount["mountPath"] == keys_dir]
    if not mounts:
        return {}
    (mount,) = mounts
    assert mount["readOnly"] is True
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    if "secret" in volume:
        secrets = [{"name": volume["secret"]["secretName"], **volume["secret"]}]
    else:
        secrets = [source["secret"] for source in volume["projected"]["sources"]]
        assert all(set(source) == {"secret"} for source in volume["projected"]["sources"]), "only Secrets"
    files: dict[str, str] = {}
    for secret in secrets:
        assert secret.get("items"), f"{secret['name']}: list the items, so no other key gets mounted"
        assert not secret.get("optional", False), "a missing key must keep the pod from starting"
        for item in secret["items"]:
            assert item["path"] not in files, f"{item['path']} mounted twice"
            files[item["path"]] = secret["name"]
    return files


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_mounts_exactly_the_key_files_its_service_reads_read_only(
    deployments: dict[str, Manifest], name: str
) -> None:
    mounted = _mounted_key_files(deployments[name])
    assert set(mounted) == KEY_FILES[name]


def test_audit_mounts_its_signing_key_and_the_subject_pseudonym_key(deployments: dict[str, Manifest]) -> None:
    deployment = deployments["audit"]
    assert _mounted_key_files(deployment) == {
        "audit.ed25519": "audit-keys",
        "subject-pseudonyms.secret": "audit-keys",
    }
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    mounted_secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v} | {
        source["secret"]["name"] for v in volumes for source in v.get("projected", {}).get("sources", [])
    }
    # its keys, the cluster CA, and its Kafka password (the Secret of its KafkaUser)
    assert mounted_secrets == {"safety-chain-cluster-ca-cert", "audit-keys", "audit"}
    assert not any("valueFrom" in item for item in _container(deployment)["env"]), "no Secret in the env"


def test_no_secret_is_mounted_by_two_services(deployments: dict[str, Manifest]) -> None:
    """One secret set per service: no Secret reaches two Deployments, and no key file either,
    but for the one the design shares: audit turns the BSN a privacy officer enters into the
    subject pseudonym with signals' key (a copy in its own Secret; docs/threat-model.md)."""
    shared_by_design = {frozenset({"signals", "audit"}): {"subject-pseudonyms.secret"}}
    mounted = {name: _mounted_key_files(deployments[name]) for name in SERVICES}
    for name, other in itertools.combinations(SERVICES, 2):
        both = set(mounted[name]) & set(mounted[other])
        assert both == shared_by_design.get(frozenset({name, other}), set()), (
            f"{name} and {other} share {both}"
        )
        assert not set(mounted[name].values()) & set(mounted[other].values()), f"{name}, {other}"
    assert not any("api-tokens" in secret for files in mounted.values() for secret in files.values())


def test_no_manifest_mentions_a_shared_api_token_secret() -> None:
    for path in sorted((REPO_ROOT / "deploy" / "k8s").rglob("*.yaml")):
        assert "api-tokens" not in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize("name", SERVICES)
def test_each_key_secret_documents_its_files_in_the_manifest(
    deployments: dict[str, Manifest], name: str
) -> None:
    comments = "\n".join(
        line
        for line in (K8S / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith("#")
    )
    for file, secret in _mounted_key_files(deployments[name]).items():
        assert re.search(rf"#\s+{re.escape(file)}\s", comments + "\n"), f"{file} is not documented"
        assert f"Secret {secret}" in comments, f"{secret} is not documented"


def _database_directories(name: str, container: Manifest) -> dict[str, str]:
    """Settings field -> folder of each SQLite database the service's settings name."""
    settings = _settings_of(name, container)
    return {
        field: str(Path(str(getattr(settings, field)).removeprefix("sqlite:///")).parent)
        for field in type(settings).model_fields
        if field.endswith("_database_url") and str(getattr(settings, field)).startswith("sqlite:")
    }


@pytest.mark.parametrize(
    ("name", "variable"), [("signals", "SC_SIGNALS_DATABASE_URL"), ("audit", "SC_AUDIT_DATABASE_URL")]
)
def test_signals_and_audit_store_their_database_on_a_persistent_volume_claim_with_one_writer(
    deployments: dict[str, Manifest], manifests: list[Manifest], name: str, variable: str
) -> None:
    deployment = deployments[name]
    container = _container(deployment)
    url = _env(container)[variable]
    assert url.startswith("sqlite:////"), "an absolute sqlite path"
    directory = str(Path(url.removeprefix("sqlite:///")).parent)
    mount = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == directory)
    assert not mount.get("readOnly", False)
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    claims = _of_kind(manifests, "PersistentVolumeClaim")
    assert claim in claims
    assert claims[claim]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert deployment["spec"]["replicas"] == 1, "SQLite: a single writer"
    assert _env(container)["SC_REPLICAS"] == "1", "the service refuses SQLite for more replicas"
    # a StatefulSet's rolling update stops the old pod before it starts the new one
    assert deployment["spec"]["updateStrategy"]["type"] == "RollingUpdate"


def test_no_two_deployments_share_a_data_volume(deployments: dict[str, Manifest]) -> None:
    claims = [
        volume["persistentVolumeClaim"]["claimName"]
        for deployment in deployments.values()
        for volume in deployment["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in volume
    ]
    assert len(claims) == len(set(claims)) == 2, claims


def test_signals_names_postgresql_as_the_scale_out_store() -> None:
    text = (K8S / "signals.yaml").read_text(encoding="utf-8")
    assert "postgresql+psycopg://" in text


@pytest.mark.parametrize("name", SERVICES)
def test_every_sqlite_database_of_a_service_is_on_a_writable_volume(
    deployments: dict[str, Manifest], name: str
) -> None:
    # the root filesystem is read-only: a default under the installed package would fail
    container = _container(deployments[name])
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly", False)}
    for field, directory in _database_directories(name, container).items():
        assert directory in writable - {"/tmp"}, f"{name}.{field}: {directory} is not a data volume"


_SETTINGS: dict[str, type[CommonSettings]] = {
    "signals": SignalsSettings,
    "consent": ConsentSettings,
    "audit": AuditSettings,
}


_PASSWORD_FILE = "SC_KAFKA_SASL_PASSWORD_FILE"


def _settings_of(name: str, container: Manifest, host_name: str | None = None) -> CommonSettings:
    """The service's settings as its container's environment makes them, in a pod named
    `host_name` (the kubelet sets HOSTNAME to it). The mounted Kafka password file is a stand-in
    file here."""
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        for variable in list(os.environ):
            if variable.startswith(("SC_", "KAFKA_")):
                patch.delenv(variable)
        patch.delenv("HOSTNAME", raising=False)
        if host_name is not None:
            patch.setenv("HOSTNAME", host_name)
        for item in container.get("env", []):
            assert "value" in item, f"{item['name']}: only plain values in the environment"
            patch.setenv(item["name"], str(item["value"]))
        if _PASSWORD_FILE in os.environ:
            stand_in = Path(folder) / "password"
            stand_in.write_text("stand-in\n", encoding="utf-8")
            patch.setenv(_PASSWORD_FILE, str(stand_in))
        return _SETTINGS[name]()


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_environment_is_a_valid_production_configuration_of_its_service(
    deployments: dict[str, Manifest], name: str
) -> None:
    container = _container(deployments[name])
    settings = _settings_of(name, container)
    assert settings.environment.value == "production"
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert not settings.generate_missing_keys and not settings.creates_topics
    assert settings.topic_prefix == "", "the ACLs name unprefixed topics, groups and transactional ids"
    # every SC_ variable set is one the service reads: a typo would be silently ignored
    fields = set(type(settings).model_fields)
    for variable in _env(container):
        if variable.startswith("SC_"):
            assert variable.removeprefix("SC_").lower() in fields, f"{name} does not read {variable}"
    # nothing defaults to a path inside the installed package (read-only, and not a volume)
    for field in fields:
        assert str(PROJECT_ROOT) not in str(getattr(settings, field)), f"{name}: set {field} explicitly"


@pytest.mark.parametrize("name", SERVICES)
def test_each_replica_is_named_by_its_pod_and_the_environment_never_fixes_an_instance_id(
    deployments: dict[str, Manifest], name: str
) -> None:
    """Two replicas with one SC_INSTANCE_ID would fence each other's transactions: the id is the
    StatefulSet pod's name (HOSTNAME), which stays the same across restarts."""
    container = _container(deployments[name])
    assert "SC_INSTANCE_ID" not in _env(container)
    ids = {_settings_of(name, container, host_name=f"{name}-{ordinal}").instance_id for ordinal in range(3)}
    assert ids == {f"{name}-{ordinal}" for ordinal in range(3)}


def test_consents_start_up_budget_outlasts_the_replay_it_allows_itself(
    deployments: dict[str, Manifest],
) -> None:
    """consent gives up after startup_catch_up_seconds of replaying its state topics; the
    kubelet must not restart it before that, or a long replay would never finish."""
    container = _container(deployments["consent"])
    settings = _settings_of("consent", container)
    assert isinstance(settings, ConsentSettings)
    probe = container["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= settings.startup_catch_up_seconds + 120, "room to connect and seed as well"


# ------------------------------------------------------------------------------------ generator


def test_the_generated_files_are_up_to_date() -> None:
    assert generate.stale_files(REPO_ROOT) == []
    assert generate.main(["--check"]) == 0


def _copy_of_the_sources(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "config", tmp_path / "config")
    shutil.copytree(K8S, tmp_path / "deploy" / "k8s" / "base", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_generator_check_fails_when_a_partner_joins_until_it_is_rerun(tmp_path: Path) -> None:
    root = _copy_of_the_sources(tmp_path)
    registry = root / "config" / "organisations.yaml"
    raw = yaml.safe_load(registry.read_text(encoding="utf-8"))
    # a valid registry entry, as the services would read it: an organisation has its OIN
    ggd = {"id": "ggd-amsterdam", "kind": "partner", "name": "GGD Amsterdam", "oin": "00000003214341570000"}
    raw["organisations"].append(ggd)
    registry.write_text(yaml.safe_dump(raw), encoding="utf-8")

    stale = generate.stale_files(root)
    assert Path("deploy/k8s/base/topics.yaml") in stale
    assert Path("deploy/k8s/base/users.yaml") in stale
    assert generate.main(["--check", "--root", str(root)]) == 1

    generate.write(root)
    assert generate.stale_files(root) == []
    topics = {doc["spec"]["topicName"] for doc in _load(root / "deploy/k8s/base/topics.yaml")}
    assert "partner.ggd-amsterdam.signals.v1" in topics
    users = {doc["metadata"]["name"] for doc in _load(root / "deploy/k8s/base/users.yaml")}
    assert "ggd-amsterdam" in users


def test_the_generator_check_notices_a_removed_agreement(tmp_path: Path) -> None:
    root = _copy_of_the_sources(tmp_path)
    agreements = sorted((root / "config" / "agreements").glob("*.yaml"))
    if not agreements:
        pytest.skip("no agreements in config/agreements")
    agreements[0].unlink()
    assert Path("deploy/k8s/base/config/agreements") / agreements[0].name in generate.stale_files(root)
    generate.write(root)
    assert generate.stale_files(root) == []
    assert not (root / "deploy/k8s/base/config/agreements" / agreements[0].name).exists()


def test_the_generator_refuses_a_principal_that_is_not_a_kafka_user(tmp_path: Path) -> None:
    root = _copy_of_the_sources(tmp_path)
    registry = root / "config" / "organisations.yaml"
    raw = yaml.safe_load(registry.read_text(encoding="utf-8"))
    raw["organisations"][0]["kafka_principal"] = "Group:admins"
    registry.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(generate.GenerationError, match="kafka_principal"):
        generate.render(root)
    assert generate.main(["--check", "--root", str(root)]) == 2


def test_the_generator_refuses_a_service_it_has_no_acl_policy_for(tmp_path: Path) -> None:
    root = _copy_of_the_sources(tmp_path)
    registry = root / "config" / "organisations.yaml"
    raw = yaml.safe_load(registry.read_text(encoding="utf-8"))
    platform = next(org for org in raw["organisations"] if org["kind"] == "platform")
    # a valid registry entry (a service carries the platform operator's OIN), no ACL policy
    raw["organisations"].append(
        {"id": "reporting", "kind": "service", "name": "Reporting", "oin": platform["oin"]}
    )
    registry.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(generate.GenerationError, match="reporting"):
        generate.render(root)
