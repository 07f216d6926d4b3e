"""docker-compose.yml and the Dockerfile: parsed, not run (no Docker engine is needed)."""

from __future__ import annotations

import fnmatch
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from sqlalchemy import make_url

from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.contracts.crypto.keys import SERVICE_KEYS
from shared.contracts.topics import PROCESSED_PARTITIONS, Party, consumed_by, is_compacted
from shared.plumbing.kafka import sasl_credentials
from shared.plumbing.settings import PROJECT_ROOT, CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_PORTS = {"signals": 8001, "consent": 8002, "audit": 8003}
# the services with a store of their own, and the variable that names its database
STORE_URLS = {"signals": "SC_SIGNALS_DATABASE_URL", "audit": "SC_AUDIT_DATABASE_URL"}
_DEFAULTED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _defaults(value: str) -> str:
    """What compose makes of `${VAR:-default}` when VAR is not set."""
    return _DEFAULTED.sub(lambda match: match.group("default") or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment"
    return {key: _defaults(str(value)) for key, value in environment.items()}


def _published_container_ports(service: dict[str, Any]) -> list[int]:
    return [
        int(_defaults(str(mapping)).rsplit(":", 1)[-1].split("/")[0]) for mapping in service.get("ports", [])
    ]


def _healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    return [str(part) for part in test]


def test_compose_runs_kafka_its_provisioning_the_key_ceremony_and_the_three_services(
    services: dict[str, Any],
) -> None:
    assert {"kafka", "kafka-init", "keys-init", "signals", "consent", "audit"} <= set(services)


def test_every_dependency_names_a_service_of_the_file(services: dict[str, Any]) -> None:
    """A service that waits for one that is not there (the old topic-init) never starts."""
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on {dependency}, which does not exist"


def test_kafka_is_the_official_apache_kafka_image_in_kraft_combined_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for single_node in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[single_node] == "1", single_node


def test_the_broker_aborts_a_stalled_transaction_before_its_partitions_move(services: dict[str, Any]) -> None:
    """A paused replica's open transaction is aborted before its group hands its partitions to
    another replica (docs/adr/0022): the broker checks for timed-out transactions this often."""
    properties = {_property_name(name): value for name, value in _environment(services["kafka"]).items()}
    assert int(properties["transaction.abort.timed.out.transaction.cleanup.interval.ms"]) == 2000


def _property_name(variable: str) -> str:
    """The apache/kafka image's mapping of a KAFKA_* variable to a server.properties key
    (KafkaDockerWrapper): `_` is `.`, `__` is `_`, `___` is `-`."""
    return variable.replace("KAFKA_", "").lower().replace("_", ".").replace("...", "-").replace("..", "_")


_NOT_SERVER_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_LOG4J_OPTS"}


def _entrypoint_script(kafka: dict[str, Any]) -> str:
    entrypoint = kafka["entrypoint"]
    assert entrypoint[:2] == ["/bin/bash", "-c"] and len(entrypoint) == 3, entrypoint
    return str(entrypoint[2]).replace("$$", "$")  # what compose hands to bash


def _run_entrypoint(kafka: dict[str, Any], root: Path) -> tuple[dict[str, str], Path, Path]:
    """Run the kafka entrypoint with bash up to the image's own entrypoint, its paths under
    `root`: the environment it hands to the image, its password file and its client config."""
    secrets, client_config, handed = root / "secrets", root / "admin.properties", root / "handed.env"
    secrets.mkdir(parents=True, exist_ok=True)
    script = _entrypoint_script(kafka)
    assert script.rstrip().endswith("exec /etc/kafka/docker/run"), "then the image's own entrypoint"
    assert _mounts(kafka)["/etc/kafka/secrets"] == "kafka-admin", "the password outlives the container"
    script = (
        script.replace("/etc/kafka/secrets", str(secrets))
        .replace("/tmp/admin.properties", str(client_config))
        .replace("exec /etc/kafka/docker/run", f"env -0 > {handed}")
    )
    environment = {"PATH": os.environ["PATH"], **_environment(kafka)}
    subprocess.run(["bash", "-c", script], env=environment, check=True, capture_output=True, timeout=30)
    variables = dict(item.split("=", 1) for item in handed.read_text().split("\0") if "=" in item)
    return variables, secrets / "admin.password", client_config


@pytest.fixture(scope="module")
def broker_properties(services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """server.properties as the image renders it from the environment the entrypoint hands it."""
    variables, _, _ = _run_entrypoint(services["kafka"], tmp_path_factory.mktemp("kafka"))
    return {
        _property_name(name): value
        for name, value in variables.items()
        if name.startswith("KAFKA_") and name not in _NOT_SERVER_PROPERTIES
    }


def _listeners(properties: dict[str, str], key: str = "listeners") -> dict[str, str]:
    """Listener name -> host:port."""
    return dict(listener.split("://", 1) for listener in properties[key].split(","))


def _mechanisms(properties: dict[str, str], listener: str) -> set[str]:
    name = listener.lower()
    enabled = properties.get(
        f"listener.name.{name}.sasl.enabled.mechanisms", properties["sasl.enabled.mechanisms"]
    )
    return set(enabled.split(","))


def test_kafka_authorises_with_the_standard_authorizer_and_allows_nothing_without_an_acl(
    broker_properties: dict[str, str],
) -> None:
    assert (
        broker_properties["authorizer.class.name"]
        == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert broker_properties["allow.everyone.if.no.acl.found"] == "false"
    assert broker_properties["super.users"] == "User:admin"


def test_every_kafka_listener_authenticates_and_clients_use_scram(
    services: dict[str, Any], broker_properties: dict[str, str]
) -> None:
    protocols = dict(
        entry.split(":", 1) for entry in broker_properties["listener.security.protocol.map"].split(",")
    )
    listeners = _listeners(broker_properties)
    controller = broker_properties["controller.listener.names"]
    inter_broker = broker_properties["inter.broker.listener.name"]
    for listener in listeners:
        assert protocols[listener] in ("SASL_PLAINTEXT", "SASL_SSL"), f"{listener} takes anyone"
        for mechanism in _mechanisms(broker_properties, listener):
            login = broker_properties.get(
                f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
            )
            assert login, f"{listener}: {mechanism} without a login module"
    # the services' and the host's listeners: SCRAM, every principal with its own credential
    client_listeners = set(_listeners(broker_properties, "advertised.listeners")) - {inter_broker}
    assert client_listeners and controller not in client_listeners
    for listener in client_listeners:
        assert _mechanisms(broker_properties, listener) == {"SCRAM-SHA-512"}, listener
    # controller and inter-broker: PLAIN whose only user is admin (nobody else gets in there)
    for listener, mechanism_key in (
        (controller, "sasl.mechanism.controller.protocol"),
        (inter_broker, "sasl.mechanism.inter.broker.protocol"),
    ):
        assert _mechanisms(broker_properties, listener) == {"PLAIN"}
        assert broker_properties[mechanism_key] == "PLAIN"
        login = broker_properties[f"listener.name.{listener.lower()}.plain.sasl.jaas.config"]
        assert re.findall(r"\buser_([^=\s]+)=", login) == ["admin"], login
    # listener names with "SASL_" in them would make the image demand a JAAS file in KAFKA_OPTS
    assert not re.search(r"SASL_.*://", _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])


def test_kafka_makes_its_admin_password_once_and_hands_it_only_to_the_broker_and_its_healthcheck(
    services: dict[str, Any], tmp_path: Path
) -> None:
    kafka = services["kafka"]
    first, password_file, client_config = _run_entrypoint(kafka, tmp_path)
    password = password_file.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", password), "32 random bytes, no newline"
    # readable by kafka-init (another uid), which alone mounts the volume with kafka
    assert password_file.stat().st_mode & 0o777 == 0o644
    assert client_config.stat().st_mode & 0o777 == 0o600
    again, _, _ = _run_entrypoint(kafka, tmp_path)
    assert password_file.read_text() == password, "a restart keeps the password"
    assert again == first
    logins = {name: value for name, value in first.items() if name.endswith("_SASL_JAAS_CONFIG")}
    for name, value in logins.items():
        if "PlainLoginModule" in value:
            assert f'password="{password}"' in value and f'user_admin="{password}"' in value, name
    assert f'username="admin" password="{password}"' in client_config.read_text()
    assert "sasl.mechanism=PLAIN" in client_config.read_text()
    other, _, _ = _run_entrypoint(kafka, tmp_path / "elsewhere")
    assert (
        other["KAFKA_LISTENER_NAME_BROKER_PLAIN_SASL_JAAS_CONFIG"]
        != first["KAFKA_LISTENER_NAME_BROKER_PLAIN_SASL_JAAS_CONFIG"]
    ), "each broker makes its own"


def test_no_password_is_written_in_the_compose_file(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for match in re.finditer(r'password=\\?"([^"\\]*)', text):
        assert match.group(1).startswith("$$"), f"a literal password: {match.group(0)}"
    for name, service in services.items():
        environment = _environment(service)
        assert "SC_KAFKA_SASL_PASSWORD" not in environment, name
        assert "KAFKA_OPTS" not in environment, name
    assert "secrets" not in compose or not compose["secrets"]


def test_services_reach_kafka_on_a_listener_the_broker_advertises(services: dict[str, Any]) -> None:
    advertised = _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    advertised_addresses = {listener.split("://", 1)[1] for listener in advertised}
    for name in ("kafka-init", *SERVICE_PORTS):
        assert _environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"] in advertised_addresses, name


def test_kafka_healthcheck_asks_the_broker_for_its_api_versions_as_admin(
    services: dict[str, Any], broker_properties: dict[str, str]
) -> None:
    command = " ".join(_healthcheck_command(services["kafka"]))
    inter_broker = broker_properties["inter.broker.listener.name"]
    port = _listeners(broker_properties)[inter_broker].rsplit(":", 1)[1]
    assert (
        f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:{port}"
        " --command-config /tmp/admin.properties"
    ) in command
    assert "/tmp/admin.properties" in _entrypoint_script(services["kafka"]), "the entrypoint writes it"


def test_kafka_init_provisions_users_acls_and_topics_as_admin_once_kafka_is_healthy(
    services: dict[str, Any], broker_properties: dict[str, str]
) -> None:
    init = services["kafka-init"]
    command = init["command"]
    assert command[:3] == ["python", "-m", "devstack.provision"]
    assert init["restart"] == "no"
    assert "build" in init
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["depends_on"]["keys-init"]["condition"] == "service_completed_successfully"
    assert _environment(init)["SC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    # admin's first login: PLAIN on the inter-broker listener, with the password kafka made
    plain = command[command.index("--plain-bootstrap-servers") + 1]
    advertised = {
        address: name for name, address in _listeners(broker_properties, "advertised.listeners").items()
    }
    assert _mechanisms(broker_properties, advertised[plain]) == {"PLAIN"}
    admin_file = Path(command[command.index("--admin-password-file") + 1])
    mounts = _mounts(init)
    assert mounts[str(admin_file.parent)] == _mounts(services["kafka"])["/etc/kafka/secrets"] == "kafka-admin"
    assert admin_file.name == "admin.password"
    assert any(str(volume) == f"kafka-admin:{admin_file.parent}:ro" for volume in init["volumes"]), (
        "read-only"
    )
    # every principal's password, as keys-init made them: the folder it reads by default
    keys_dir = _environment(init)["SC_KEYS_DIR"]
    assert (
        mounts[f"{keys_dir}/kafka"]
        == _mounts(services["keys-init"])[f"{keys_dir}/kafka"]
        == "kafka-credentials"
    )
    assert "--credentials-dir" not in command
    assert "dev-keys" not in mounts.values(), "no organisation's private key"


@pytest.mark.parametrize(
    ("volume", "holders"),
    [("kafka-admin", {"kafka", "kafka-init"}), ("kafka-credentials", {"keys-init", "kafka-init"})],
)
def test_the_kafka_passwords_are_mounted_only_where_they_are_needed(
    compose: dict[str, Any], services: dict[str, Any], volume: str, holders: set[str]
) -> None:
    assert volume in compose["volumes"]
    assert {name for name, service in services.items() if volume in _mounts(service).values()} == holders


def _provision(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("SC_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "devstack.provision", *args],
        cwd=REPO_ROOT,
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_provisioning_step_refuses_production_before_it_contacts_anything(tmp_path: Path) -> None:
    admin = tmp_path / "admin.password"
    admin.write_text("secret\n")
    credentials = tmp_path / "credentials"
    production = {
        "SC_ENVIRONMENT": "production",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9093",
        "SC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SC_KAFKA_SASL_USERNAME": "admin",
        "SC_KAFKA_SASL_PASSWORD": "secret",
        "SC_CONFIG_DIR": str(REPO_ROOT / "config"),
    }
    args = ("--credentials-dir", str(credentials), "--admin-password-file", str(admin), "--attempts", "1")
    for environment in (production, {**production, "SC_KAFKA_SASL_PASSWORD": ""}):
        result = _provision(environment, *args)
        assert result.returncode == 2, result.stderr
        assert "refused" in result.stderr
        assert "attempt" not in result.stderr, "nothing was contacted"
        assert not credentials.exists(), "nothing was written"


def test_the_provisioning_step_needs_the_admin_password_for_a_plain_login(tmp_path: Path) -> None:
    result = _provision(
        {"SC_ENVIRONMENT": "development", "SC_CONFIG_DIR": str(REPO_ROOT / "config")},
        "--credentials-dir",
        str(tmp_path),
        "--plain-bootstrap-servers",
        "127.0.0.1:1",
    )
    assert result.returncode == 2 and "--admin-password-file" in result.stderr


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_each_service_runs_its_module_and_serves_http_on_its_published_port(
    services: dict[str, Any], name: str, port: int
) -> None:
    service = services[name]
    assert service["command"] == ["python", "-m", f"services.{name}"]
    assert "build" in service
    env = _environment(service)
    assert env["SC_HTTP_PORT"] == str(port)
    assert env["SC_HTTP_HOST"] == "0.0.0.0"
    assert env["SC_LOG_FORMAT"] == "json"
    assert _published_container_ports(service) == [port]


def _host_ports(service: dict[str, Any]) -> range:
    """The host ports a service's replicas publish on: one each, from its range."""
    (mapping,) = service["ports"]
    host = _defaults(str(mapping)).rsplit(":", 1)[0].rsplit(":", 1)[-1]
    first, _, last = host.partition("-")
    return range(int(first), int(last or first) + 1)


def test_every_replica_publishes_its_http_port_on_a_host_port_of_its_own(services: dict[str, Any]) -> None:
    """A fixed host port would let only one replica start: each service publishes a range, as
    wide as the most replicas that get work, and no two services' ranges overlap."""
    taken: set[int] = set()
    for name in SERVICE_PORTS:
        ports = _host_ports(services[name])
        assert len(ports) >= _replicas(services[name]), f"{name}: a port per replica"
        assert not taken & set(ports), f"{name}: overlaps another service's ports"
        taken |= set(ports)
    for name in SCALED_BY_GROUP:
        assert len(_host_ports(services[name])) >= PROCESSED_PARTITIONS, f"{name}: room up to the partitions"


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_each_service_healthcheck_hits_readyz_on_its_own_port(
    services: dict[str, Any], name: str, port: int
) -> None:
    command = _healthcheck_command(services[name])
    assert command[:3] == ["CMD", "python", "-c"], "the slim image has no curl: use python's urllib"
    assert f"http://127.0.0.1:{port}/readyz" in command[3]


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_waits_for_a_healthy_kafka_and_a_completed_kafka_init(
    services: dict[str, Any], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["kafka"]["condition"] == "service_healthy"
    assert depends_on["kafka-init"]["condition"] == "service_completed_successfully"
    assert "topic-init" not in depends_on


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_connects_as_itself_with_the_password_in_its_own_keys_volume(
    services: dict[str, Any], name: str
) -> None:
    environment = _environment(services[name])
    assert environment["SC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["SC_KAFKA_SASL_USERNAME"] == name
    assert "SC_KAFKA_SASL_PASSWORD" not in environment
    assert "SC_KAFKA_CREDENTIALS_DIR" not in environment, "default: <SC_KEYS_DIR>/kafka, its own volume"
    # of the volumes that hold keys or passwords, it mounts its own and no other
    secret_volumes = {
        "dev-keys",
        "kafka-credentials",
        "kafka-admin",
        *(f"{other}-keys" for other in SERVICE_PORTS),
        *(f"{other}-postgres" for other in STORE_URLS),
    }
    own = {f"{name}-keys"} | ({f"{name}-postgres"} if name in STORE_URLS else set())
    assert set(_mounts(services[name]).values()) & secret_volumes == own


def _key_volume(services: dict[str, Any], name: str) -> str:
    keys_dir = _environment(services[name])["SC_KEYS_DIR"]
    (volume,) = [str(v).split(":")[0] for v in services[name]["volumes"] if str(v).split(":")[1] == keys_dir]
    return volume


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_keeps_its_keys_on_a_named_volume_of_its_own(
    compose: dict[str, Any], services: dict[str, Any], name: str
) -> None:
    volume = _key_volume(services, name)
    assert volume == f"{name}-keys" and volume in compose["volumes"]
    for other, service in services.items():
        if other not in (name, "keys-init"):
            assert volume not in {str(v).split(":")[0] for v in service.get("volumes", [])}, other


def test_keys_init_makes_the_development_keys_and_fills_each_service_volume_before_it_starts(
    services: dict[str, Any], dockerfile: list[str]
) -> None:
    init = services["keys-init"]
    assert init["command"][:3] == ["python", "-m", "devstack.keys"]
    export = init["command"][init["command"].index("--export-to") + 1]
    mounts = _mounts(init)
    keys_dir = _environment(init)["SC_KEYS_DIR"]
    assert mounts[keys_dir] == "dev-keys"
    # every principal's Kafka password lands in its own volume (for kafka-init), whose mount
    # point the image makes, so that it too starts out owned by the non-root user
    assert mounts[f"{keys_dir}/kafka"] == "kafka-credentials"
    assert any(line.startswith("RUN mkdir") and f"{keys_dir}/kafka" in line for line in dockerfile)
    for name in SERVICE_PORTS:
        assert mounts[f"{export}/{name}"] == _key_volume(services, name)
        assert services[name]["depends_on"]["keys-init"]["condition"] == "service_completed_successfully"
        # the mount point exists in the image, so the fresh volume is owned by the non-root user
        assert any(line.startswith("RUN mkdir") and f"{export}/{name}" in line for line in dockerfile)
    # no one but keys-init mounts the volume that holds every organisation's private keys
    assert [other for other, service in services.items() if "dev-keys" in _mounts(service).values()] == [
        "keys-init"
    ]


def test_each_exported_key_set_holds_only_its_own_service_private_files(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, export = tmp_path / "keys", tmp_path / "export"
    subprocess.run(
        [sys.executable, "-m", "devstack.keys", "--keys-dir", str(keys), "--export-to", str(export)],
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "SC_ENVIRONMENT": "development"},
        capture_output=True,
    )
    public = {path.name for path in (keys / "public").iterdir()}
    for name in SERVICE_PORTS:
        folder = export / name
        private = {path.name for path in folder.iterdir() if path.is_file()}
        assert private <= SERVICE_KEYS[name].files
        assert private == {f"{name}.{a}" for a in SERVICE_KEYS[name].key_pairs}
        assert {path.name for path in (folder / "public").iterdir()} == public
        assert all((folder / file).stat().st_mode & 0o777 == 0o600 for file in private)
        # its own Kafka password, no other principal's
        own = folder / "kafka" / f"{name}.password"
        assert {path.name for path in (folder / "kafka").iterdir()} == {own.name}
        assert own.read_text() == (keys / "kafka" / own.name).read_text()
        assert own.stat().st_mode & 0o777 == 0o600
        # and the service, configured as compose configures it, logs in with exactly that
        with monkeypatch.context() as patch:
            for variable in list(os.environ):
                if variable.startswith(("SC_", "KAFKA_")):
                    patch.delenv(variable)
            for variable, value in {**_environment(services[name]), "SC_KEYS_DIR": str(folder)}.items():
                patch.setenv(variable, value)
            patch.setenv("HOSTNAME", "3f2a9c1b7d4e")  # Docker sets it: the container's id
            assert sasl_credentials(_SETTINGS[name]()) == (name, own.read_text().strip())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume (named volume or host path)."""
    return {parts[1]: parts[0] for parts in (str(volume).split(":") for volume in service.get("volumes", []))}


SCALED_BY_GROUP = {"signals": Party.SIGNALS, "consent": Party.CONSENT}
"""The services whose consumer groups share partitions out among their replicas."""


def _replicas(service: dict[str, Any]) -> int:
    return int(_defaults(str(service["deploy"]["replicas"])))


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_runs_replicas_and_tells_them_how_many_from_one_number(
    services: dict[str, Any], name: str
) -> None:
    """Scaling is changing one variable: it sets deploy.replicas and the SC_REPLICAS the
    service checks, so the two never disagree."""
    service = services[name]
    replicas = _replicas(service)
    assert replicas == 2, "signals and consent: two; audit: a leader and a standby"
    raw_replicas, raw_setting = str(service["deploy"]["replicas"]), str(service["environment"]["SC_REPLICAS"])
    assert raw_replicas == raw_setting and raw_replicas.startswith("${"), "one variable for both"
    assert "SC_INSTANCE_ID" not in service["environment"], "one id for every replica would fence them"
    assert "container_name" not in service and "hostname" not in service, "each replica its own host name"
    if name in SCALED_BY_GROUP:
        grouped = [spec for spec in consumed_by(SCALED_BY_GROUP[name]) if not is_compacted(spec)]
        assert replicas <= min(spec.partitions for spec in grouped), "a partition for every replica"


@pytest.mark.parametrize(("name", "variable"), sorted(STORE_URLS.items()))
def test_the_replicas_of_signals_and_audit_share_their_store_in_postgres(
    compose: dict[str, Any], services: dict[str, Any], name: str, variable: str
) -> None:
    url = make_url(_environment(services[name])[variable])
    assert url.drivername == "postgresql+psycopg", "the driver of the postgres extra"
    assert url.host == "postgres" and url.host in services
    assert url.port == 5432
    assert url.username == url.database == name, "a role and a database of its own"
    assert url.password is None, "the password comes from PGPASSFILE, never from a URL"
    # no SQLite volume is left to write to
    assert "/data" not in _mounts(services[name])
    assert {"signals-data", "audit-data"}.isdisjoint(compose["volumes"])


_SETTINGS: dict[str, type[CommonSettings]] = {
    "signals": SignalsSettings,
    "consent": ConsentSettings,
    "audit": AuditSettings,
}


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_environment_is_read_by_its_settings_and_leaves_no_path_in_the_package(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    for variable in list(os.environ):
        if variable.startswith(("SC_", "KAFKA_")):
            monkeypatch.delenv(variable)
    environment = _environment(services[name])
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    # Docker sets each container's HOSTNAME (its id): the replica's instance id
    monkeypatch.setenv("HOSTNAME", "3f2a9c1b7d4e")
    settings = _SETTINGS[name]()
    assert settings.instance_id == "3f2a9c1b7d4e"
    assert settings.replicas == _replicas(services[name])
    for setting, url in settings.shared_stores.items():
        assert url.startswith("postgresql+psycopg://"), f"{name}: {setting} is shared by its replicas"
    assert settings.kafka_credentials_folder == Path(environment["SC_KEYS_DIR"]) / "kafka"
    fields = set(type(settings).model_fields)
    for variable in environment:
        if variable.startswith("SC_"):
            assert variable.removeprefix("SC_").lower() in fields, f"{name} does not read {variable}"
    # the installed package is no place for keys, config or databases: every such default is set
    for field in fields:
        assert str(PROJECT_ROOT) not in str(getattr(settings, field)), f"{name}: set {field} explicitly"


def test_the_config_dir_of_the_services_is_where_the_dockerfile_copies_config(
    services: dict[str, Any], dockerfile: list[str]
) -> None:
    workdir = [line.split()[1] for line in dockerfile if line.startswith("WORKDIR ")][-1]
    copied = [line.split()[-1] for line in dockerfile if re.match(r"COPY (--\S+ )*config/? ", line)]
    assert copied, "the Dockerfile copies config/"
    config_dir = str(Path(workdir) / copied[0])
    for name in ("kafka-init", *SERVICE_PORTS):
        assert _environment(services[name])["SC_CONFIG_DIR"] == config_dir, name


class _Stage(NamedTuple):
    image: str
    name: str
    instructions: list[str]


def _stages(dockerfile: list[str]) -> list[_Stage]:
    """The Dockerfile's stages, the ARGs declared before the first FROM resolved in FROM."""
    arguments: dict[str, str] = {}
    stages: list[_Stage] = []
    for line in dockerfile:
        if line.startswith("FROM "):
            words = line.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: arguments[m[1] or m[2]], words[1])
            name = words[3] if len(words) == 4 and words[2].upper() == "AS" else ""
            stages.append(_Stage(image, name, []))
        elif stages:
            stages[-1].instructions.append(line)
        elif line.startswith("ARG "):
            variable, _, default = line.split(None, 1)[1].partition("=")
            arguments[variable] = default
    return stages


def _runtime(dockerfile: list[str]) -> _Stage:
    """The stage `runtime`: the production image's content (the default target adds nothing)."""
    (runtime,) = [stage for stage in _stages(dockerfile) if stage.name == "runtime"]
    return runtime


def _copied(stage: _Stage) -> set[str]:
    return {line.split()[-2].rstrip("/") for line in stage.instructions if line.startswith("COPY ")}


def test_the_dockerfile_copies_every_package_that_pyproject_installs(dockerfile: list[str]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in patterns} - {"devstack"}
    build, runtime = _stages(dockerfile)[0], _runtime(dockerfile)
    for stage in (build, runtime):  # built into the virtualenv; run from /app (python -m services.x)
        copied = _copied(stage)
        assert packages <= copied, f"{stage.name}: not copied: {sorted(packages - copied)}"
        assert "pyproject.toml" in copied, stage.name
    # the project itself, its dependencies already installed from the lock
    assert any(re.fullmatch(r"RUN pip .*install .*--no-deps \.", line) for line in build.instructions)


def test_the_image_installs_the_runtime_lock_with_hashes_and_so_the_postgresql_driver(
    dockerfile: list[str],
) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (driver,) = [d for d in pyproject["project"]["optional-dependencies"]["postgres"] if "psycopg" in d]
    locked = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert re.search(r"^psycopg==\S+ \\$", locked, re.MULTILINE), f"{driver} in requirements.lock"
    assert re.search(r"^psycopg-binary==", locked, re.MULTILINE), f"{driver} in requirements.lock"
    build = _stages(dockerfile)[0]
    (install,) = [line for line in build.instructions if "-r requirements.lock" in line]
    words = install.split()
    assert words[:2] == ["RUN", "pip"] and "install" in words
    for option in ("--require-hashes", "--only-binary=:all:", "--no-cache-dir"):
        assert option in words, f"{option}: every file checked against the lock, nothing compiled"
    assert "COPY requirements.lock ./" in build.instructions


def test_the_production_image_has_no_devstack_and_compose_builds_the_development_one(
    dockerfile: list[str], services: dict[str, Any]
) -> None:
    stages = {stage.name: stage for stage in _stages(dockerfile)}
    production = _stages(dockerfile)[-1]  # `docker build .` without --target
    assert production.name == "production" and production.image == "runtime" and not production.instructions
    for name in ("build", "runtime"):
        assert "devstack" not in _copied(stages[name]), f"{name}: devstack/ never enters production"
        assert not any("devstack" in line for line in stages[name].instructions), name
    assert stages["development"].image == "runtime"
    assert _copied(stages["development"]) == {"devstack"}
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["target"] == "development", name


def test_the_base_image_is_python_3_11_slim_pinned_by_digest(dockerfile: list[str]) -> None:
    names = {stage.name for stage in _stages(dockerfile)}
    images = {stage.image for stage in _stages(dockerfile) if stage.image not in names}
    assert len(images) == 1, "every stage on the same base: the virtualenv's python is the base's"
    (image,) = images
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image), image
    assert dockerfile.count(f"ARG PYTHON_IMAGE={image}") == 1, "pinned in one place"


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user(dockerfile: list[str]) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2 and stages[0].name == "build"
    users = [line.split()[1] for line in _runtime(dockerfile).instructions if line.startswith("USER ")]
    assert users, "the image sets a USER"
    assert users[-1].split(":")[0] not in ("root", "0")


_DEVELOPMENT_TOOLS = re.compile(
    r"\b(apt-get|apk|gcc|g\+\+|cc|clang|make|build-essential|[a-z]+-dev|git|curl|wget|pytest|ruff|mypy"
    r"|hypothesis|playwright|uv|check-jsonschema)\b"
)


def test_the_runtime_stage_carries_no_development_tooling(dockerfile: list[str]) -> None:
    runtime = _runtime(dockerfile)
    runs = [line for line in runtime.instructions if line.startswith("RUN ")]
    for line in runs:
        assert not _DEVELOPMENT_TOOLS.search(line), line
        assert not re.search(r"\bpip\b.*\binstall\b", line), f"nothing installed in the runtime stage: {line}"
    # no installer: the base image's pip goes, and the virtualenv it copies never had one
    assert any(re.search(r"pip uninstall .*\bpip setuptools wheel\b", line) for line in runs)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime.instructions
    assert "RUN python -m venv --without-pip /opt/venv" in _stages(dockerfile)[0].instructions
    environment = " ".join(line for line in runtime.instructions if line.startswith("ENV "))
    assert "PATH=/opt/venv/bin:$PATH" in environment
    # the dev extra, and the lock that has it, never reach the image
    text = " ".join(dockerfile)
    assert "requirements-dev.lock" not in text
    assert not re.search(r"\[[a-z,]*\bdev\b", text)
    patterns = _dockerignore()
    assert _ignored("requirements-dev.lock", patterns) and not _ignored("requirements.lock", patterns)


def _image_healthcheck(dockerfile: list[str]) -> tuple[list[str], str]:
    """The runtime stage's HEALTHCHECK: its options and its exec-form command."""
    (line,) = [line for line in _runtime(dockerfile).instructions if line.startswith("HEALTHCHECK ")]
    options, _, command = line.removeprefix("HEALTHCHECK ").partition(" CMD ")
    parsed = json.loads(command)
    assert isinstance(parsed, list) and parsed[:2] == ["python", "-c"], (
        "exec form: the slim image has no curl"
    )
    return options.split(), str(parsed[2])


def test_the_image_healthcheck_asks_healthz_on_the_port_every_service_reads(dockerfile: list[str]) -> None:
    options, snippet = _image_healthcheck(dockerfile)
    assert any(option.startswith("--start-period=") for option in options)
    assert "/healthz" in snippet and "SC_HTTP_PORT" in snippet
    # the one image runs every service: each reads its port from SC_HTTP_PORT (prefix SC_), and
    # without it listens on its default, one of those the check falls back to
    for name, settings in _SETTINGS.items():
        assert settings.model_config.get("env_prefix") == "SC_" and "http_port" in settings.model_fields, name
        assert str(settings.model_fields["http_port"].default) in snippet, name
        assert settings.model_fields["http_port"].default == SERVICE_PORTS[name]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_the_image_healthcheck_passes_only_while_healthz_answers_2xx(
    dockerfile: list[str], readyz_server: HTTPServer, status: int | None, healthy: bool
) -> None:
    _, snippet = _image_healthcheck(dockerfile)
    port = readyz_server.server_address[1]
    if status is None:  # nothing listens on the port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    _Probe.status, _Probe.seen = status or 200, []
    environment = {**os.environ, "SC_HTTP_PORT": str(port)}
    result = subprocess.run(
        [sys.executable, "-c", snippet], env=environment, capture_output=True, timeout=20, check=False
    )
    assert (result.returncode == 0) is healthy, result.stderr.decode()
    if status is not None:
        assert _Probe.seen == ["/healthz"]


def _dockerignore() -> list[str]:
    return [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_the_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".cache", ".local"} <= ignored


class _Probe(BaseHTTPRequestHandler):
    status = 200
    seen: list[str] = []  # noqa: RUF012 (reset by each test that reads it)

    def do_GET(self) -> None:
        _Probe.seen.append(self.path)
        self.send_response(self.status if self.path in ("/readyz", "/healthz") else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_service_healthcheck_fails_while_readyz_answers_503(
    services: dict[str, Any], readyz_server: HTTPServer, status: int, healthy: bool
) -> None:
    port = readyz_server.server_address[1]
    snippet = _healthcheck_command(services["signals"])[3].replace(":8001/", f":{port}/")
    _Probe.status = status
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, timeout=20, check=False)
    assert (result.returncode == 0) is healthy, result.stderr.decode()


def test_the_image_carries_the_compliance_map_the_console_serves(dockerfile: list[str]) -> None:
    from services.audit.console import add_console

    default = inspect.signature(add_console).parameters["compliance_document"].default
    relative = Path(default).relative_to(REPO_ROOT).as_posix()
    assert f"COPY {relative} {relative}" in dockerfile


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore: the last pattern that matches the path (or a parent) decides;
    `!` makes an exception."""
    ignored = False
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        exception = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatch(candidate, glob) for candidate in candidates):
            ignored = not exception
    return ignored


def test_nothing_the_dockerfile_copies_is_left_out_of_the_build_context(dockerfile: list[str]) -> None:
    patterns = _dockerignore()
    sources = [line.split()[-2] for line in dockerfile if line.startswith("COPY ") and "--from" not in line]
    assert sources and _ignored("docs/adr/0001.md", patterns) and _ignored(".local/keys", patterns)
    assert [source for source in sources if _ignored(source, patterns)] == []


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    """check-jsonschema's copy of the Compose specification's schema: no network needed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_one_shot_containers_leave_out_the_image_healthcheck(services: dict[str, Any]) -> None:
    one_shots = [name for name, service in services.items() if service.get("restart") == "no"]
    assert set(one_shots) == {"kafka-init", "keys-init"}
    for name in one_shots:
        assert services[name]["healthcheck"] == {"disable": True}, name


def _documented_postgres_settings() -> dict[str, str]:
    """`NAME=value` lines of the compose file's header: where each store is."""
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    header = text[: text.index("\nname: ")]
    return dict(re.findall(r"^#\s+([A-Z_]+)=(\S+)$", header, re.MULTILINE))


def test_postgres_always_runs_with_its_data_on_a_named_volume_and_a_healthcheck(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    postgres = services["postgres"]
    assert not [name for name, service in services.items() if "profiles" in service], "everything runs"
    assert str(postgres["image"]).startswith("postgres:")
    data = _environment(postgres)["PGDATA"]
    (volume,) = [volume for path, volume in _mounts(postgres).items() if data.startswith(f"{path}/")]
    assert volume in compose["volumes"], "the databases survive `docker compose up --build`"
    test = _healthcheck_command(postgres)
    assert test[:2] == ["CMD", "pg_isready"]
    # over TCP: the first start's init runs on a server that listens on its socket only
    assert test[test.index("--host") + 1] == "127.0.0.1"
    assert postgres["restart"] == "unless-stopped"


@pytest.mark.parametrize(("name", "variable"), sorted(STORE_URLS.items()))
def test_the_header_says_where_each_store_is(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str, variable: str
) -> None:
    documented = _documented_postgres_settings()
    url = make_url(documented[variable])
    assert url.drivername == "postgresql+psycopg", "the driver of the postgres extra"
    assert url.host == "postgres" and url.host in services
    assert url.port == 5432
    assert url.username == url.database == name, "a role and a database of its own"
    assert url.password is None, "the password comes from PGPASSFILE, never from a URL"
    # the service's setting takes the variable from the environment, this URL without it
    raw = str(services[name]["environment"][variable])
    assert raw == f"${{{variable}:-{documented[variable]}}}"
    for other in list(os.environ):
        if other.startswith(("SC_", "KAFKA_")):
            monkeypatch.delenv(other)
    monkeypatch.setenv(variable, documented[variable])
    monkeypatch.setenv("SC_ENVIRONMENT", services[name]["environment"]["SC_ENVIRONMENT"])
    settings = _SETTINGS[name]()
    assert getattr(settings, variable.removeprefix("SC_").lower()) == documented[variable]


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_only_the_stores_wait_for_postgres(services: dict[str, Any], name: str) -> None:
    depends_on = services[name]["depends_on"]
    if name in STORE_URLS:
        assert depends_on["postgres"] == {"condition": "service_healthy"}
    else:
        assert "postgres" not in depends_on
    for other in ("kafka", "kafka-init", "keys-init"):
        assert "postgres" not in services[other].get("depends_on", {}), other


@pytest.mark.parametrize("name", sorted(STORE_URLS))
def test_each_store_finds_its_postgres_password_in_a_volume_only_it_and_postgres_mount(
    services: dict[str, Any], name: str
) -> None:
    passfile = Path(_environment(services[name])["PGPASSFILE"])
    volume = f"{name}-postgres"
    assert _mounts(services[name])[str(passfile.parent)] == volume
    assert f"{volume}:{passfile.parent}:ro" in services[name]["volumes"], "read-only"
    assert _mounts(services["postgres"])[f"/credentials/{name}"] == volume
    holders = {other for other, service in services.items() if volume in _mounts(service).values()}
    assert holders == {"postgres", name}


def _run_postgres_entrypoint(postgres: dict[str, Any], root: Path) -> tuple[dict[str, str], list[str]]:
    """Run the postgres entrypoint with bash up to the image's own, its paths under `root` and
    chown recorded instead of done: the environment it hands on and the chown calls."""
    script = str(postgres["entrypoint"][2]).replace("$$", "$")
    assert postgres["entrypoint"][:2] == ["/bin/bash", "-c"]
    assert script.rstrip().endswith("exec docker-entrypoint.sh postgres"), "then the image's own entrypoint"
    handed, calls, tools = root / "handed.env", root / "chown.calls", root / "bin"
    for folder in (tools, root / "initdb.d", *(root / "credentials" / name for name in STORE_URLS)):
        folder.mkdir(parents=True, exist_ok=True)
    (tools / "chown").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (tools / "chown").chmod(0o755)
    script = (
        script.replace("/credentials", str(root / "credentials"))
        .replace("/docker-entrypoint-initdb.d", str(root / "initdb.d"))
        .replace("exec docker-entrypoint.sh postgres", f"env -0 > {handed}")
    )
    environment = {"PATH": f"{tools}:{os.environ['PATH']}", **_environment(postgres)}
    subprocess.run(["bash", "-c", script], env=environment, check=True, capture_output=True, timeout=30)
    variables = dict(item.split("=", 1) for item in handed.read_text().split("\0") if "=" in item)
    return variables, calls.read_text().splitlines()


def test_the_postgres_entrypoint_makes_each_store_its_password_once_and_hands_it_to_that_store_alone(
    services: dict[str, Any], dockerfile: list[str], tmp_path: Path
) -> None:
    postgres = services["postgres"]
    handed, chowned = _run_postgres_entrypoint(postgres, tmp_path)
    documented = _documented_postgres_settings()
    (image_user,) = [
        line.split()[1] for line in _runtime(dockerfile).instructions if line.startswith("USER ")
    ]
    passwords = {}
    for name, variable in STORE_URLS.items():
        folder = tmp_path / "credentials" / name
        url = make_url(documented[variable])
        password = (folder / "password").read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", password), "32 random bytes"
        # libpq's password file, read by the service: its host, port, database and user are the
        # documented URL's, and libpq ignores it unless only its owner may read it
        passfile = folder / Path(_environment(services[name])["PGPASSFILE"]).name
        assert passfile.read_text() == f"{url.host}:{url.port}:{url.database}:{url.username}:{password}\n"
        for secret in (passfile, folder / "password"):
            assert secret.stat().st_mode & 0o777 == 0o600, secret.name
        assert f"{image_user} {passfile}.new" in chowned, "owned by the image's user"
        assert f"postgres:postgres {folder / 'password'}.new" in chowned, "read by the server"
        passwords[name] = password
    assert len(set(passwords.values())) == len(passwords), "none shared"
    # the superuser's: random, handed to the image's entrypoint and kept nowhere
    assert re.fullmatch(r"[0-9a-f]{64}", handed["POSTGRES_PASSWORD"])
    assert handed["POSTGRES_PASSWORD"] not in passwords.values()
    # the first start's init script: a role and a database for each store, no one else's
    (init,) = (tmp_path / "initdb.d").iterdir()
    text = init.read_text()
    assert re.search(r"^for name in (\w+ ?)+; do$", text, re.MULTILINE)
    assert set(re.findall(r"^for name in (.+); do$", text, re.MULTILINE)[0].split()) == set(STORE_URLS)
    for statement in (
        """CREATE ROLE :"name" LOGIN PASSWORD :'password';""",
        """CREATE DATABASE :"name" OWNER :"name";""",
        """REVOKE ALL ON DATABASE :"name" FROM PUBLIC;""",
    ):
        assert statement in text
    assert f"postgres:postgres {init}" in chowned, "the image runs it as postgres"
    # a restart keeps every password (the roles were made with them once)
    again, _ = _run_postgres_entrypoint(postgres, tmp_path)
    for name, password in passwords.items():
        assert (tmp_path / "credentials" / name / "password").read_text() == password
    assert again["POSTGRES_PASSWORD"] != handed["POSTGRES_PASSWORD"]
