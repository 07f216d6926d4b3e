"""`python -m devstack` (what `make run` runs): Kafka, topics and the three services.

Uses the embedded defaults: a local broker on 127.0.0.1:9092 (SASL/SCRAM, ACLs on; TLS on a
second port) with its data in .local/kafka, development keys in .local/keys and every
principal's Kafka password in .local/keys/kafka, the audit log in .local/audit.db. With
KAFKA_BOOTSTRAP_SERVERS set, no broker is started and that cluster is used (its topics created,
users and ACLs left to its owner: `safety-chain kafka acls apply`; SC_KAFKA_SECURITY_PROTOCOL
and SC_KAFKA_SASL_* say how to connect, PLAINTEXT for a cluster that authenticates no one).
Ctrl-C stops everything, broker last. It is development by definition: it sets
SC_ENVIRONMENT=development for itself and the services it starts (unset means production).

Tokens come from the project's development issuer (`safety-chain token issue`). With
SC_IDENTITY_PROVIDER=keycloak (`make run IDP=keycloak`) a local Keycloak starts first, on
127.0.0.1:8180 (SC_LOCAL_KEYCLOAK_PORT), with one realm per organisation (devstack/realms.py),
its secrets and passwords in .local/keycloak/realms/secrets; the services then read a copy of
the configuration whose issuers.yaml also trusts those realms (.local/keycloak/config), so
systems and people can use tokens from their organisation's realm.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.kafka import PROJECT_ROOT, LocalKafka
from devstack.keycloak import LocalKeycloak
from devstack.keys import prepare_development_keys
from devstack.provision import provision
from devstack.realms import system_client
from devstack.services import DEFAULT_PORTS, ServiceProcess
from shared.plumbing.create_topics import create_all
from shared.plumbing.settings import CommonSettings

LOCAL = PROJECT_ROOT / ".local"


def main() -> int:
    os.environ["SC_ENVIRONMENT"] = "development"  # the services inherit it
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    broker: LocalKafka | None = None
    keycloak: LocalKeycloak | None = None
    services: list[ServiceProcess] = []
    # .local holds keys, the stores, the broker's log and the service logs: the user's alone
    LOCAL.mkdir(mode=0o700, exist_ok=True)
    LOCAL.chmod(0o700)
    try:
        settings = CommonSettings()
        # Every organisation's key pairs before any service starts: each service then reads its
        # own private keys and the others' public files, and creates no one else's key.
        prepare_development_keys(settings.keys_dir, settings.config_dir)
        if os.environ.get("SC_IDENTITY_PROVIDER", "development") == "keycloak":
            keycloak = start_keycloak(settings.config_dir, settings.keys_dir)
        if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
            print("starting Apache Kafka (KRaft, single node, SASL/SCRAM and ACLs) ...", flush=True)
            broker = LocalKafka(
                LOCAL / "kafka",
                port=int(os.environ.get("SC_LOCAL_KAFKA_PORT", "9092")),
                tls_port=int(os.environ.get("SC_LOCAL_KAFKA_TLS_PORT", "9094")),
                credentials_dir=settings.kafka_credentials_folder,
            )
            broker.start()
            os.environ.update(broker.access.env())
            done = asyncio.run(provision(broker.access, settings.config_dir, settings.topic_prefix))
            print(
                f"kafka: {broker.bootstrap_servers} (SASL_PLAINTEXT), {broker.tls_bootstrap_servers}"
                f" (SASL_SSL, CA {broker.tls.ca_file}); {len(done.topics_created)} topics created,"
                f" {len(done.acls.created)} ACLs added; passwords in {settings.kafka_credentials_folder}",
                flush=True,
            )
        else:
            created = asyncio.run(create_all(settings.acting_as("admin")))
            print(f"kafka: {settings.kafka_bootstrap_servers} ({len(created)} topics created)", flush=True)
        (LOCAL / "logs").mkdir(parents=True, exist_ok=True)
        for name, port in DEFAULT_PORTS.items():
            service = ServiceProcess(name, port, env={}, log_path=LOCAL / "logs" / f"{name}.log")
            services.append(service.start())
        for service in services:
            service.wait_ready()
            print(
                f"{service.name:8} {service.url}  (API docs {service.url}/docs,"
                f" log .local/logs/{service.name}.log)",
                flush=True,
            )
        print("safety-chain is running; Ctrl-C stops it.", flush=True)
        print(
            "the CLI in another shell: export SC_ENVIRONMENT=development (unset means production)",
            flush=True,
        )
        while not stop.wait(1.0):
            for service in services:
                if not service.running:
                    print(
                        f"{service.name} stopped unexpectedly; see .local/logs/{service.name}.log",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        for service in reversed(services):
            service.stop()
        if broker is not None:
            broker.stop()
        if keycloak is not None:
            keycloak.stop()
        print("stopped.", flush=True)


def start_keycloak(config_dir: Path, keys_dir: Path) -> LocalKeycloak:
    """Keycloak with the organisations' realms; the services will trust them (SC_CONFIG_DIR)."""
    print("starting Keycloak (one realm per organisation; 20-30 s) ...", flush=True)
    port = int(os.environ.get("SC_LOCAL_KEYCLOAK_PORT", "8180"))
    # the console's sign-in redirect is registered for 127.0.0.1 on any port (RFC 8252 7.3)
    keycloak = LocalKeycloak(LOCAL / "keycloak", config_dir, keys_dir, port=port)
    keycloak.start()
    trusting = keycloak.write_config(config_dir, LOCAL / "keycloak" / "config")
    os.environ["SC_CONFIG_DIR"] = str(trusting)  # the services inherit it
    assert keycloak.realms is not None
    example = "gm0363"
    print(
        f"keycloak: {keycloak.base_url} (admin: {keycloak.base_url}/admin, user admin, password in"
        f" {keycloak.workdir / 'admin.password'}); issuers {keycloak.issuer('<organisation>')};"
        f" secrets and passwords in {keycloak.realms.secrets_dir}; services read {trusting}\n"
        f"  a system's token: SC_OAUTH_ISSUER={keycloak.issuer(example)}"
        f" SC_OAUTH_CLIENT_ID={system_client(example)}"
        f" SC_OAUTH_CLIENT_KEY_FILE={keys_dir / (example + '.ed25519')} safety-chain token fetch",
        flush=True,
    )
    return keycloak


if __name__ == "__main__":
    sys.exit(main())
