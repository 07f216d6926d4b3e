"""The three services as real processes on the real broker, under one fresh topic prefix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from devstack.kafka import ADMIN_PRINCIPAL, PROJECT_ROOT, KafkaAccess, free_port
from devstack.keys import development_issuer, prepare_development_keys
from devstack.provision import provision
from devstack.services import ServiceProcess
from partner import PartnerClient, PartnerIdentity, ReceivedSignal
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.crypto.pseudonyms import delivery_id
from shared.contracts.registry import Registry
from shared.plumbing.kafka import topic_partitions
from shared.plumbing.policy import Role
from tests.polling import eventually_async

CONFIG_DIR = PROJECT_ROOT / "config"


@dataclass
class Stack:
    kafka: KafkaAccess
    prefix: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)  # per service; default one
    database_url: str | None = None  # PostgreSQL for signals' and audit's stores; default SQLite
    config_dir: Path = CONFIG_DIR  # e.g. one whose issuers.yaml also trusts the test Keycloak
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def kafka_options(self, principal: str = ADMIN_PRINCIPAL) -> dict[str, Any]:
        """Options for a raw aiokafka client connecting as `principal` (a test, or an attacker)."""
        return self.kafka.client_options(principal)

    @property
    def keys_dir(self) -> Path:
        return self.workdir / "keys"

    @property
    def revoked_tokens_file(self) -> Path:
        return self.workdir / "revoked-tokens.txt"

    @property
    def audit_db(self) -> Path:
        return self.workdir / "audit.db"

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.kafka.env(),  # each service connects as itself
            "SC_ENVIRONMENT": "development",  # generated keys, a loopback broker without TLS
            "SC_TOPIC_PREFIX": self.prefix,
            "SC_KEYS_DIR": str(self.keys_dir),
            "SC_CONFIG_DIR": str(self.config_dir),
            "SC_AUDIT_DATABASE_URL": f"sqlite:///{self.audit_db}",
            "SC_SIGNALS_DATABASE_URL": f"sqlite:///{self.workdir / 'signals.db'}",
            "SC_REVOKED_TOKENS_FILE": str(self.revoked_tokens_file),
            "SC_LOG_FORMAT": "json",
            "SC_CHECKPOINT_INTERVAL_SECONDS": "1",
            "SC_SIGNALS_URL": self.url("signals"),
            "SC_AUDIT_URL": self.url("audit"),
            "SC_CONSENT_URL": self.url("consent"),
            **self.extra_env,
        }

    def _replica_env(self, instance: int, count: int) -> dict[str, str]:
        shared = (
            {"SC_SIGNALS_DATABASE_URL": self.database_url, "SC_AUDIT_DATABASE_URL": self.database_url}
            if self.database_url
            else {}
        )
        return {"SC_INSTANCE_ID": str(instance), "SC_REPLICAS": str(count), **shared}

    def url(self, service: str) -> str:
        return self.services[service].url

    def start(self) -> Stack:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        # as `make run` does: every key pair first, so no service makes another's private key;
        # then users, ACLs and topics under this stack's prefix
        prepare_development_keys(self.keys_dir, self.config_dir)
        asyncio.run(provision(self.kafka, self.config_dir, self.prefix))
        replica_env: dict[str, dict[str, str]] = {}
        for service in ("signals", "consent", "audit"):
            count = self.replicas.get(service, 1)
            for instance in range(count):
                # replica 0 keeps the service's name: stack.url("audit") and the like reach it
                name = f"{service}-{instance}" if instance else service
                self.services[name] = ServiceProcess(
                    name, free_port(), env={}, log_path=self.workdir / "logs" / f"{name}.log", service=service
                )
                replica_env[name] = self._replica_env(instance, count)
        for name, process in self.services.items():
            process.env = {**self.env, **replica_env[name]}
            process.start()
        for process in self.services.values():
            process.wait_ready()
        return self

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def restart(self, name: str) -> None:
        self.services[name].start()
        self.services[name].wait_ready()

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def token(
        self,
        organisation: str = "gm0363",
        *roles: Role,
        person: str | None = None,
        lifetime_seconds: int = 900,
        audience: tuple[str, ...] = ("signals", "consent", "audit"),
    ) -> str:
        """An access token of `organisation` in `roles` (default: publisher), as
        `safety-chain token issue` prints it, from the development issuer."""
        return development_issuer(self.keys_dir).issue(
            organisation,
            roles or (Role.PUBLISHER,),
            audience,
            person=person,
            lifetime_seconds=lifetime_seconds,
        )

    def bearer(self, organisation: str, *roles: Role, person: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(organisation, *roles, person=person)}"}

    def post_signal(
        self, document: dict[str, Any] | bytes, as_municipality: str | None = "gm0363", **headers: str
    ) -> httpx.Response:
        content = (
            document if isinstance(document, bytes) else httpx.Request("POST", "/", json=document).content
        )
        auth = {"authorization": f"Bearer {self.token(as_municipality)}"} if as_municipality else {}
        return httpx.post(
            f"{self.url('signals')}/v1/signals",
            content=content,
            headers={"content-type": "application/json", **auth, **headers},
            timeout=30,
        )

    def audit_records(self, **params: str) -> list[dict[str, Any]]:
        """The records, read as the platform's privacy officer: every page (GET /v1/audit/records
        answers at most 500 a page and links the next with `Link: <...>; rel="next"`)."""
        headers = self.bearer("safety-chain", Role.PRIVACY_OFFICER)
        records: list[dict[str, Any]] = []
        url: str | None = f"{self.url('audit')}/v1/audit/records"
        query: dict[str, str] | None = params
        while url is not None:
            response = httpx.get(url, params=query, headers=headers, timeout=60)
            response.raise_for_status()
            records += response.json()
            following = response.links.get("next", {}).get("url")
            url, query = (f"{self.url('audit')}{following}", None) if following else (None, None)
        return records

    def verify_audit(self) -> httpx.Response:
        """GET /v1/audit/verify as the platform's privacy officer (200 intact, 409 not)."""
        return httpx.get(
            f"{self.url('audit')}/v1/audit/verify",
            headers=self.bearer("safety-chain", Role.PRIVACY_OFFICER),
            timeout=120,
        )

    def partner(self, partner: str) -> PartnerClient:
        """The partner's SDK client, holding the partner's own key pairs (made by the development
        key ceremony at start) and consent's public key."""
        keys = KeyRing(self.keys_dir, generate_missing=False, scope=KeyScope.organisation(partner))
        registry = Registry.load(CONFIG_DIR, keys)
        return PartnerClient(
            PartnerIdentity(partner, keys.x25519_private(partner), keys.ed25519_private(partner)),
            registry.ed25519_public("consent"),
            self.kafka_options(partner),
            self.prefix,
        )

    def delivery_id(self, partner: str, signal_id: str) -> str:
        """The id `partner` knows the delivery of `signal_id` by (keyed per partner, like its
        pseudonyms: the test holds the platform's keys, a partner does not)."""
        key = KeyRing(self.keys_dir, generate_missing=True).secret("partner-pseudonyms")
        return str(delivery_id(key, partner, signal_id))

    def delivery_of(self, partner: str, signal_id: str) -> ReceivedSignal | None:
        wanted = self.delivery_id(partner, signal_id)
        return next((d for d in self.deliveries(partner) if d.delivery_id == wanted), None)

    def deliveries(self, partner: str, timeout: float = 3.0) -> list[ReceivedSignal]:
        return asyncio.run(self.partner(partner).read(wait_seconds=timeout))

    def read_topic(self, name: str, isolation_level: str = "read_committed") -> list[ConsumerRecord]:
        return asyncio.run(read_all(self.kafka_options(), self.topic(name), isolation_level))

    def prefixed_topics(self) -> list[str]:
        async def listing() -> list[str]:
            admin = AIOKafkaAdminClient(**self.kafka_options())
            await admin.start()
            try:
                return [t for t in await admin.list_topics() if t.startswith(self.prefix)]
            finally:
                await admin.close()

        return asyncio.run(listing())


async def read_all(
    options: dict[str, Any], topic: str, isolation_level: str = "read_committed"
) -> list[ConsumerRecord]:
    """Every record now on the topic, from the beginning to the end offsets (`options`: how to
    connect, see KafkaAccess.client_options)."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []

        async def read_to_the_end() -> bool:
            if not any([await consumer.position(tp) < end[tp] for tp in partitions]):
                return True
            batch = await consumer.getmany(timeout_ms=500)
            for chunk in batch.values():
                records.extend(chunk)
            return False

        await eventually_async(read_to_the_end, what=f"{topic} read up to its end offsets", interval=0)
        return records
    finally:
        await consumer.stop()


def header(record: ConsumerRecord, name: str) -> str | None:
    return next((value.decode() for key, value in record.headers if key == name), None)
