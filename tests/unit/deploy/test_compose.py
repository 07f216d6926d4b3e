"""docker-compose.yml and the Dockerfile: parsed, not run (no Docker engine is needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.crypto.keys import SERVICE_KEYS
from shared.settings import PROJECT_ROOT, CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_PORTS = {"signals": 8001, "consent": 8002, "audit": 8003}
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


def test_compose_runs_kafka_topic_init_and_the_three_services(services: dict[str, Any]) -> None:
    assert {"kafka", "topic-init", "signals", "consent", "audit"} <= set(services)


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


def test_services_reach_kafka_on_a_listener_the_broker_advertises(services: dict[str, Any]) -> None:
    advertised = _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    advertised_addresses = {listener.split("://", 1)[1] for listener in advertised}
    for name in ("topic-init", *SERVICE_PORTS):
        assert _environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"] in advertised_addresses, name


def test_kafka_healthcheck_asks_the_broker_for_its_api_versions(services: dict[str, Any]) -> None:
    command = " ".join(_healthcheck_command(services["kafka"]))
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in command


def test_topic_init_creates_the_topics_once_after_kafka_is_healthy(services: dict[str, Any]) -> None:
    init = services["topic-init"]
    assert init["command"] == ["python", "-m", "shared.create_topics"]
    assert init["restart"] == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "build" in init


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


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_each_service_healthcheck_hits_readyz_on_its_own_port(
    services: dict[str, Any], name: str, port: int
) -> None:
    command = _healthcheck_command(services[name])
    assert command[:3] == ["CMD", "python", "-c"], "the slim image has no curl: use python's urllib"
    assert f"http://127.0.0.1:{port}/readyz" in command[3]


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_each_service_waits_for_a_healthy_kafka_and_a_completed_topic_init(
    services: dict[str, Any], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["kafka"]["condition"] == "service_healthy"
    assert depends_on["topic-init"]["condition"] == "service_completed_successfully"


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
    assert mounts[_environment(init)["SC_KEYS_DIR"]] == "dev-keys"
    for name in SERVICE_PORTS:
        assert mounts[f"{export}/{name}"] == _key_volume(services, name)
        assert services[name]["depends_on"]["keys-init"]["condition"] == "service_completed_successfully"
        # the mount point exists in the image, so the fresh volume is owned by the non-root user
        assert any(line.startswith("RUN mkdir") and f"{export}/{name}" in line for line in dockerfile)
    # no one but keys-init mounts the volume that holds every organisation's private keys
    assert [other for other, service in services.items() if "dev-keys" in _mounts(service).values()] == [
        "keys-init"
    ]


def test_each_exported_key_set_holds_only_its_own_service_private_files(tmp_path: Path) -> None:
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


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume (named volume or host path)."""
    return {parts[1]: parts[0] for parts in (str(volume).split(":") for volume in service.get("volumes", []))}


@pytest.mark.parametrize(
    ("name", "variable"), [("signals", "SC_SIGNALS_DATABASE_URL"), ("audit", "SC_AUDIT_DATABASE_URL")]
)
def test_signals_and_audit_keep_their_database_on_a_named_volume_of_their_own(
    compose: dict[str, Any], services: dict[str, Any], name: str, variable: str
) -> None:
    url = _environment(services[name])[variable]
    assert url.startswith("sqlite:////"), "an absolute sqlite path"
    directory = str(Path(url.removeprefix("sqlite:///")).parent)
    mounts = _mounts(services[name])
    assert directory in mounts, f"{directory} is not a volume"
    assert mounts[directory] in compose["volumes"], "a named volume survives `docker compose up --build`"
    others = {
        volume
        for other, service in services.items()
        if other != name
        for path, volume in _mounts(service).items()
        if path != "/keys"
    }
    assert mounts[directory] not in others, "each store has its own volume"


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
    settings = _SETTINGS[name]()
    fields = set(type(settings).model_fields)
    for variable in environment:
        if variable.startswith("SC_"):
            assert variable.removeprefix("SC_").lower() in fields, f"{name} does not read {variable}"
    # the installed package is no place for keys, config or databases: every such default is set
    for field in fields:
        assert str(PROJECT_ROOT) not in str(getattr(settings, field)), f"{name}: set {field} explicitly"
    if "instance_id" in fields:
        assert "SC_INSTANCE_ID" in environment, f"{name}: its transactional id needs SC_INSTANCE_ID"


def test_the_config_dir_of_the_services_is_where_the_dockerfile_copies_config(
    services: dict[str, Any], dockerfile: list[str]
) -> None:
    workdir = [line.split()[1] for line in dockerfile if line.startswith("WORKDIR ")][-1]
    copied = [line.split()[-1] for line in dockerfile if re.match(r"COPY (--\S+ )*config/? ", line)]
    assert copied, "the Dockerfile copies config/"
    config_dir = str(Path(workdir) / copied[0])
    for name in ("topic-init", *SERVICE_PORTS):
        assert _environment(services[name])["SC_CONFIG_DIR"] == config_dir, name


def test_the_dockerfile_copies_every_package_that_pyproject_installs(dockerfile: list[str]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in patterns}
    copied = {line.split()[-2].rstrip("/") for line in dockerfile if line.startswith("COPY ")}
    assert packages <= copied, f"not copied: {sorted(packages - copied)}"
    assert "pyproject.toml" in copied or any("pyproject.toml" in line for line in dockerfile)
    assert any(re.match(r"""RUN pip install --no-cache-dir ["']?\.""", line) for line in dockerfile)


def test_the_image_has_the_postgresql_driver_the_stores_scale_out_to(dockerfile: list[str]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(
        "psycopg" in dependency for dependency in pyproject["project"]["optional-dependencies"]["postgres"]
    )
    installs = [line for line in dockerfile if line.startswith("RUN pip install")]
    assert any(re.search(r"""["']?\.\[([a-z,]*,)?postgres(,[a-z,]*)?\]["']?""", line) for line in installs), (
        installs
    )


def test_the_image_is_python_3_11_slim_and_runs_as_a_non_root_user(dockerfile: list[str]) -> None:
    stages = [line.split()[1] for line in dockerfile if line.startswith("FROM ")]
    assert stages[-1] == "python:3.11-slim"
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users, "the image sets a USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".cache", ".local"} <= ignored


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
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
