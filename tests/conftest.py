"""Test tiers: unit/ (seconds; no network, broker, database server or toolchain: the repository's
files, temporary folders and SQLite at most), deploy/ (the deployment files, through kustomize
and Prometheus' parser built with Go and schemas fetched once into .cache/), integration/ (real
Kafka, real databases), e2e/ (the three services as processes on the real broker).

One real Apache Kafka broker serves the whole session; each test or module isolates itself
with a fresh topic prefix. Set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy

from devstack.kafka import KafkaAccess, LocalKafka
from devstack.keycloak import KeycloakAdmin, LocalKeycloak
from devstack.keys import organisation_ids
from devstack.postgres import LocalPostgres
from devstack.provision import provision
from devstack.realms import GeneratedRealms
from shared.contracts.crypto.keys import generate_development_keys

# An unset SC_ENVIRONMENT means production (shared/plumbing/settings.py). The tests run on generated
# development keys and a local broker, so they say development, explicitly and once, for every
# settings object they build and every process they start; a test of production sets its own.
os.environ.setdefault("SC_ENVIRONMENT", "development")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture(scope="session")
def local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | None]:
    """The broker this session started, which a test may restart; None on an existing cluster."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Keycloak:
    """The session's Keycloak: one realm per organisation that calls the APIs (devstack/realms.py)."""

    server: LocalKeycloak
    config_dir: Path
    """A copy of config/ whose issuers.yaml also trusts every realm, each for its organisation
    (`Stack(..., config_dir=keycloak.config_dir)`)."""
    keys_dir: Path
    """The organisations' development keys; a system client proves itself with its Ed25519 key."""

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def issuer(self, organisation: str) -> str:
        return self.server.issuer(organisation)

    @property
    def realms(self) -> GeneratedRealms:
        """The generated secrets: `client_secret(org, client_id)`, `password(org, username)`,
        `people[org]`."""
        assert self.server.realms is not None
        return self.server.realms

    @property
    def admin(self) -> KeycloakAdmin:
        """Disable or enable a person or a client, add a client (Keycloak's admin REST API)."""
        return self.server.admin

    def add_impostor(self, realm: str, client_id: str, claims_to_be: str, secret: str) -> None:
        """What an administrator at `realm`'s provider could make: a publishing client whose
        well-signed tokens claim to speak for `claims_to_be`. Delete it with
        `admin.delete_client`."""
        self.admin.create_client(
            realm,
            {
                "clientId": client_id,
                "secret": secret,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "defaultClientScopes": ["basic", "profile"],
                "optionalClientScopes": ["signals"],
                "attributes": {"access.token.header.type.rfc9068": "true"},
                "protocolMappers": [
                    {
                        "name": name,
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-hardcoded-claim-mapper",
                        "config": {"claim.name": name, "claim.value": value, "access.token.claim": "true"},
                    }
                    for name, value in (("organisation", claims_to_be), ("client_id", client_id))
                ],
            },
        )
        self.admin.add_service_account_roles(realm, client_id, ["publisher"])


class KeycloakStart:
    """The session's Keycloak, launched when the session begins: it takes 20-30 s to start,
    which the tests before the first one that needs it run through."""

    def __init__(self, workdir: Path) -> None:
        self.keys_dir = workdir / "keys"
        self.config_dir = workdir / "config"
        generate_development_keys(self.keys_dir, organisation_ids(CONFIG_DIR))  # the system clients' keys
        self.server = LocalKeycloak(workdir / "server", CONFIG_DIR, self.keys_dir).launch()
        self._ready: Keycloak | None = None

    def ready(self) -> Keycloak:
        if self._ready is None:
            self.server.wait_until_ready()
            self._ready = Keycloak(
                self.server, self.server.write_config(CONFIG_DIR, self.config_dir), self.keys_dir
            )
        return self._ready

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session", autouse=True)
def keycloak_start(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeycloakStart | None]:
    """Starts Keycloak when the session begins, if any of its tests asks for `keycloak`."""
    if not any("keycloak" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    starting = KeycloakStart(tmp_path_factory.mktemp("keycloak"))
    try:
        yield starting
    finally:
        starting.stop()


@pytest.fixture(scope="session")
def keycloak(keycloak_start: KeycloakStart | None) -> Keycloak:
    """A real Keycloak with the organisations' realms, started once, for the tests that ask."""
    assert keycloak_start is not None, "keycloak_start starts it for every session that asks"
    return keycloak_start.ready()


@pytest.fixture(scope="session")
def kafka_access(local_kafka: LocalKafka | None) -> KafkaAccess:
    """The session's cluster; `kafka_access.client_options(principal)` connects as one principal."""
    if local_kafka is None:
        return KafkaAccess(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    return local_kafka.access


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: SC_TEST_POSTGRES_URL if set, else a throwaway local server."""
    existing = os.environ.get("SC_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    server = LocalPostgres(tmp_path_factory.mktemp("postgres"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def fresh_database(url: str) -> str:
    """A new, empty database on the server of `url`: the URL of it."""
    name = f"t{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return sqlalchemy.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_access: KafkaAccess) -> str:
    return kafka_access.bootstrap_servers


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topic_prefix() -> str:
    return fresh_prefix()


@pytest.fixture
async def kafka_prefix(kafka_access: KafkaAccess, project_config_dir: Path) -> str:
    """A fresh topic prefix, provisioned as `make run` provisions the local broker: every
    principal's user, its ACLs under the prefix, and the topics."""
    prefix = fresh_prefix()
    await provision(kafka_access, project_config_dir, prefix)
    return prefix


@pytest.fixture(scope="session")
def project_config_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "config"
