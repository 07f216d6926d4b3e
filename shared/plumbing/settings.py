"""Validated settings, read from the environment (prefix `SC_`) once per process.

Safe by default: an unset `SC_ENVIRONMENT` means production, which refuses what is only safe on
a laptop (generated development keys, a Kafka cluster on loopback, Kafka without TLS or without
credentials) with a message naming the setting. `make run`, the tests, the benchmarks and
docker-compose say `SC_ENVIRONMENT=development` explicitly; the other defaults are the embedded
local set-up of `make run`.
"""

from __future__ import annotations

import ipaddress
import sys
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.plumbing.kafka_credentials import KAFKA_CREDENTIALS_FOLDER

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a TTY, JSON otherwise
    JSON = "json"
    CONSOLE = "console"


class CommonSettings(BaseSettings):
    """What every service needs: Kafka, topics, the registry, keys and logging."""

    model_config = SettingsConfigDict(env_prefix="SC_", extra="ignore", frozen=True, populate_by_name=True)

    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318/v1/traces);"
        " unset: no traces are recorded or exported.",
    )
    environment: Environment = Field(
        default=Environment.PRODUCTION,
        description="production (the default: refuses unsafe settings) or development (`make run`,"
        " the tests: generated keys, a local broker).",
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "SC_KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of the Kafka cluster.",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[a-z0-9._-]*$",
        description="Prepended to every topic name; isolates environments and test runs.",
    )
    config_dir: Path = Field(
        default=PROJECT_ROOT / "config",
        description="Holds organisations.yaml and the agreements/ folder.",
    )
    keys_dir: Path = Field(
        default=PROJECT_ROOT / ".local" / "keys",
        description="Private keys; generated on first use in development only.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT",
        description="SASL_SSL in production (refused otherwise); SASL_PLAINTEXT for the local broker,"
        " PLAINTEXT only for a development cluster that authenticates no one.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(
        default=None, description="The Kafka principal; each service defaults to its own id."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        description="Its password; in development, default: <kafka_credentials_dir>/<user>.password.",
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        description="A file holding the password (a mounted Secret): read at connect time, so a"
        " rotated password needs no new environment.",
    )
    kafka_credentials_dir: Path | None = Field(
        default=None,
        description="Development Kafka passwords, one file per principal; default <keys_dir>/kafka.",
    )
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle of the brokers (SASL_SSL).")
    create_topics: bool = Field(
        default=False,
        description="Create missing topics at start-up. Off: whoever provisions the cluster owns its"
        " topics (devstack, Strimzi, `safety-chain kafka apply`), and no service may create one.",
    )
    token_audience: str | None = Field(
        default=None, description="The `aud` access tokens must name; default: the service's id."
    )
    revoked_tokens_file: Path = Field(
        default=PROJECT_ROOT / ".local" / "revoked-tokens.txt",
        description="Token ids (jti) refused before they expire, one per line; re-read on change.",
    )
    rate_limit: str = Field(
        default="600/minute", description="Calls per credential (e.g. 600/minute); 429 beyond."
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest HTTP request body any endpoint reads."
    )
    refusal_record_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Unauthenticated requests are counted, but logged (and dead-lettered by the"
        " signals intake) at most once per client address per this many seconds, with a count.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        description="How many replicas of this service the deployment runs. Above one, each needs"
        " a stable id of its own (SC_INSTANCE_ID or a StatefulSet's pod name) and the state the"
        " replicas share must be in PostgreSQL (docs/adr/0022).",
    )
    instance_id_setting: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        validation_alias=AliasChoices("SC_INSTANCE_ID"),
        description="This replica's stable id; default: the host name (a StatefulSet pod's name,"
        " `signals-1`, stays the same across restarts), else `0`.",
    )
    host_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("HOSTNAME"),
        exclude=True,
        description="Set by the container runtime: a pod's name under Kubernetes.",
    )
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses or networks (CIDR) of the reverse proxies in front"
        " of the service (the Ingress controller's pods). Only a request from one of them has its"
        " X-Forwarded-For (the client's address) and X-Forwarded-Proto (https) believed; empty:"
        " none, every request is taken as it arrives.",
    )

    @property
    def generate_missing_keys(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def creates_topics(self) -> bool:
        return self.create_topics

    @property
    def kafka_credentials_folder(self) -> Path:
        return self.kafka_credentials_dir or self.keys_dir / KAFKA_CREDENTIALS_FOLDER

    def acting_as(self, principal: str) -> Self:
        """These settings for a client that connects as `principal` (a CLI command acting for an
        organisation), unless a principal is configured explicitly."""
        if self.kafka_sasl_username is not None:
            return self
        return self.model_copy(update={"kafka_sasl_username": principal})

    @property
    def instance_id(self) -> str:
        """Stable per replica, unique among the live ones: it names the replica's transactional
        id (a restarted replica fences its zombie) and its lease as audit's sequencer."""
        return self.instance_id_setting or self.host_name or "0"

    @property
    def shared_stores(self) -> dict[str, str]:
        """The setting and URL of each store the replicas of this service share (none here)."""
        return {}

    @property
    def trusted_proxy_networks(self) -> list[str]:
        """The trusted proxies as uvicorn's `forwarded_allow_ips` takes them (validated)."""
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Self:
        for item in self.trusted_proxy_networks:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"SC_TRUSTED_PROXIES: {item!r} is no IP address or network; name the proxies"
                    " (never `*`: anyone could then claim any address)"
                ) from None
        return self

    @model_validator(mode="after")
    def _replicas_can_share(self) -> Self:
        if self.replicas == 1:
            return self
        if self.instance_id_setting is None and self.host_name is None:
            raise ValueError(
                f"SC_REPLICAS={self.replicas} needs a stable id per replica: set SC_INSTANCE_ID, or"
                " run as a StatefulSet (its pod name, HOSTNAME, is the id)"
            )
        for setting, url in self.shared_stores.items():
            if not url.startswith("postgresql"):
                raise ValueError(
                    f"SC_REPLICAS={self.replicas} needs a store the replicas share: set {setting}"
                    " to postgresql+psycopg://... (SQLite is one process's file)"
                )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        hint = " (SC_ENVIRONMENT is production unless it says development)"
        if any(
            server.strip().startswith(("127.", "localhost", "[::1]", "::1"))
            for server in self.kafka_bootstrap_servers.split(",")
        ):
            raise ValueError(
                "production refuses a Kafka cluster on loopback: set KAFKA_BOOTSTRAP_SERVERS" + hint
            )
        if self.kafka_security_protocol == "PLAINTEXT":
            raise ValueError(
                "production refuses unauthenticated Kafka (PLAINTEXT): set SC_KAFKA_SECURITY_PROTOCOL"
                "=SASL_SSL" + hint
            )
        if self.kafka_security_protocol == "SASL_PLAINTEXT":
            raise ValueError(
                "production refuses Kafka without TLS (SASL_PLAINTEXT sends every record and the"
                " SCRAM exchange in clear): set SC_KAFKA_SECURITY_PROTOCOL=SASL_SSL" + hint
            )
        if not (self.kafka_sasl_username and (self.kafka_sasl_password or self.kafka_sasl_password_file)):
            raise ValueError(
                "SASL needs SC_KAFKA_SASL_USERNAME and SC_KAFKA_SASL_PASSWORD"
                " (or SC_KAFKA_SASL_PASSWORD_FILE)" + hint
            )
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def settings_or_exit(kind: type[SettingsT], service: str) -> SettingsT:
    """A service's settings from its environment; when they are refused (an unsafe default in
    production, a malformed value), one line per problem on stderr and exit 2, not a traceback.
    The rejected values are never printed: a setting can hold a secret."""
    try:
        return kind()
    except ValidationError as error:
        lines = [f"{service}: refused to start, its settings are not safe or not valid:"]
        for problem in error.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            lines.append(f"  {where}: {problem['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
