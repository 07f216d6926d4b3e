"""A real, single-node Apache Kafka (KRaft) broker on 127.0.0.1, without Docker.

The broker's jars come from Maven Central through `devstack/pom.xml` and are cached in
`.cache/kafka/libs` (git-ignored). `LocalKafka` formats KRaft storage in a data folder,
starts `kafka.Kafka` with Java 17 as a child process, waits until it serves metadata and
stops it cleanly. The child is tied to its parent with PR_SET_PDEATHSIG, so a killed test
run or supervisor leaves no orphan broker behind.

It trusts no one, as production does: every client authenticates (SASL/SCRAM-SHA-512 on the
client listener, and on a TLS listener whose certificate a locally generated CA signs) and the
StandardAuthorizer allows only what an ACL grants (`allow.everyone.if.no.acl.found=false`).
The super user `admin` exists to provision users, topics and ACLs (devstack.provision); the
controller listener takes only it (SASL/PLAIN). Passwords live in `credentials_dir`, one file
per principal (shared.plumbing.kafka_credentials).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.tls import LocalCertificateAuthority
from shared.plumbing.kafka_credentials import ensure_passwords, read_password
from shared.plumbing.transactional import BROKER_ABORT_INTERVAL_MS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POM = Path(__file__).resolve().parent / "pom.xml"
LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.yaml"
CACHE_DIR = PROJECT_ROOT / ".cache" / "kafka"
LIBS_DIR = CACHE_DIR / "libs"
_LIBS_STAMP = LIBS_DIR / ".pom-sha256"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, formatted or started."""


def ensure_jars() -> Path:
    """Fetch the pinned Kafka jars once; refetch only when pom.xml changes."""
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if _LIBS_STAMP.exists() and _LIBS_STAMP.read_text().strip() == pom_digest:
        return LIBS_DIR
    if shutil.which("mvn") is None:
        raise LocalKafkaError("Maven (mvn) is needed to fetch the Kafka jars")
    shutil.rmtree(LIBS_DIR, ignore_errors=True)
    result = maven_copy_dependencies(POM, LIBS_DIR)
    if result.returncode != 0:
        raise LocalKafkaError(f"fetching Kafka jars failed:\n{result.stdout}\n{result.stderr}")
    _LIBS_STAMP.write_text(pom_digest)
    return LIBS_DIR


def maven_copy_dependencies(pom: Path, output_dir: Path) -> subprocess.CompletedProcess[str]:
    """`pom`'s runtime dependencies copied into `output_dir` by Maven (from Maven Central,
    through the machine's ~/.m2); the caller reads the result and says what failed."""
    return subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={output_dir}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


ADMIN_PRINCIPAL = "admin"
"""The broker's super user: provisions topics, users and ACLs; no service runs as it."""
SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaAccess:
    """How a client reaches a cluster as one principal: the bootstrap servers and, for an
    authenticating cluster, the folder holding each principal's development password (None:
    an open cluster, e.g. one given by KAFKA_BOOTSTRAP_SERVERS without credentials)."""

    bootstrap_servers: str
    credentials_dir: Path | None = None
    tls_bootstrap_servers: str | None = None
    ca_file: Path | None = None

    def password(self, principal: str) -> str:
        assert self.credentials_dir is not None
        return read_password(self.credentials_dir, principal)

    def client_options(self, principal: str = ADMIN_PRINCIPAL) -> dict[str, Any]:
        """aiokafka connection options for `principal`."""
        if self.credentials_dir is None:
            return {"bootstrap_servers": self.bootstrap_servers}
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": SCRAM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.password(principal),
        }

    def settings(self, principal: str) -> dict[str, Any]:
        """The same, as CommonSettings fields (for a service run in-process by a test)."""
        if self.credentials_dir is None:
            return {"kafka_bootstrap_servers": self.bootstrap_servers, "kafka_security_protocol": "PLAINTEXT"}
        return {
            "kafka_bootstrap_servers": self.bootstrap_servers,
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": principal,
            "kafka_credentials_dir": self.credentials_dir,
        }

    def env(self, principal: str | None = None) -> dict[str, str]:
        """The same, as environment variables of a service process (whose settings name its
        own principal when `principal` is None)."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if self.credentials_dir is None:
            env["SC_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
        else:
            env |= {
                "SC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "SC_KAFKA_CREDENTIALS_DIR": str(self.credentials_dir),
            }
            if principal is not None:
                env["SC_KAFKA_SASL_USERNAME"] = principal
        return env


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM the broker when its parent dies."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM `process` and wait up to `timeout` seconds for it, then SIGKILL; nothing when it
    is not running. For the local broker, Keycloak and the services `make run` supervises."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class LocalKafka:
    """One combined broker+controller; `bootstrap_servers` is valid after `start()`."""

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    tls_port: int = 0
    credentials_dir: Path | None = None  # default: <data_dir>/credentials
    heap: str = "512m"
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.credentials_dir = Path(self.credentials_dir or self.data_dir / "credentials")
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        self.tls_port = self.tls_port or free_port()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def tls(self) -> LocalCertificateAuthority:
        return LocalCertificateAuthority(self.data_dir / "tls")

    @property
    def access(self) -> KafkaAccess:
        assert self.credentials_dir is not None
        return KafkaAccess(
            self.bootstrap_servers, self.credentials_dir, self.tls_bootstrap_servers, self.tls.ca_file
        )

    def _admin_password(self) -> str:
        assert self.credentials_dir is not None
        return ensure_passwords(self.credentials_dir, [ADMIN_PRINCIPAL])[ADMIN_PRINCIPAL]

    @property
    def server_log(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def _properties(self) -> str:
        admin = self._admin_password()
        server_pem = self.tls.server_pem("127.0.0.1")
        scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
        plain_login = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required"
            f' username="{ADMIN_PRINCIPAL}" password="{admin}" user_{ADMIN_PRINCIPAL}="{admin}";'
        )
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"CLIENT://127.0.0.1:{self.port},TLS://127.0.0.1:{self.tls_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"CLIENT://127.0.0.1:{self.port},TLS://127.0.0.1:{self.tls_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,TLS:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            # Authenticated: SCRAM for every client (the admin's credential bootstrapped at
            # format time, everyone else's added by devstack.provision), PLAIN for the controller.
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "listener.name.client.scram-sha-512.sasl.jaas.config": (
                f'{scram_login} username="{ADMIN_PRINCIPAL}" password="{admin}";'
            ),
            "listener.name.tls.scram-sha-512.sasl.jaas.config": f"{scram_login};",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain_login,
            "listener.name.tls.ssl.keystore.type": "PEM",
            "listener.name.tls.ssl.keystore.location": str(server_pem),
            # Authorised: nothing is allowed unless an ACL allows it.
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN_PRINCIPAL}",
            "log.dirs": str(self.data_dir / "data"),
            "num.partitions": "3",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # A paused replica's transaction is aborted before its partitions move on
            # (shared/plumbing/transactional.py, handover_is_safe).
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": str(BROKER_ABORT_INTERVAL_MS),
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, main_class: str, *args: str, log_dir: Path) -> list[str]:
        classpath = os.pathsep.join(str(jar) for jar in sorted(ensure_jars().glob("*.jar")))
        return [
            "java",
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={log_dir}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            classpath,
            main_class,
            *args,
        ]

    def format(self) -> Path:
        """Write server.properties and format KRaft storage unless already formatted."""
        config = self.data_dir / "server.properties"
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        config.touch(mode=0o600)
        config.chmod(0o600)  # it holds the admin's password
        config.write_text(self._properties())
        stamp = self.data_dir / "data" / ".authenticated"
        if (self.data_dir / "data" / "meta.properties").exists():
            if stamp.exists():
                return config
            # Storage from before the broker authenticated: its admin has no SCRAM credential,
            # so the broker could not even talk to itself. Development data: start afresh.
            shutil.rmtree(self.data_dir / "data")
        cluster_id = _run(self._java("kafka.tools.StorageTool", "random-uuid", log_dir=log_dir))
        _run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id.strip(),
                "-c",
                str(config),
                "--add-scram",
                f"{SCRAM}=[name={ADMIN_PRINCIPAL},password={self._admin_password()}]",
                log_dir=log_dir,
            )
        )
        stamp.touch()
        return config

    def start(self, timeout: float = 90.0) -> LocalKafka:
        config = self.format()
        stdout = (self.data_dir / "logs" / "broker.out").open("ab")
        self._process = subprocess.Popen(
            self._java("kafka.Kafka", str(config), log_dir=self.data_dir / "logs"),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
        )
        stdout.close()
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalKafkaError(f"Kafka exited with {self._process.returncode}; see {self.server_log}")
            if self._started_in_log() and _port_open(self.port):
                return
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(f"Kafka did not start within {timeout}s; see {self.server_log}")

    def _started_in_log(self) -> bool:
        try:
            return "Kafka Server started" in self.server_log.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self._process, timeout)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalKafkaError(f"{' '.join(command[-4:])} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
