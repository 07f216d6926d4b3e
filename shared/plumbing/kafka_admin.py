"""Provisioning a cluster from the topic table: SCRAM users and ACLs, idempotently.

aiokafka has no admin calls for ACLs or SCRAM credentials, so these go through
confluent-kafka's AdminClient (librdkafka). `apply_acls` makes the cluster's ACLs of the
principals it manages equal to what shared.plumbing.acls derives: missing bindings are created, bindings
no longer derived are deleted, others are left alone, so running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from shared.plumbing.acls import Acl, Principal, acls_for
from shared.plumbing.kafka import client_options
from shared.plumbing.settings import CommonSettings

SCRAM_ITERATIONS: Final = 8192
_TIMEOUT: Final = 30.0

_RESOURCE: Final = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
}
_PATTERN: Final = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
_OPERATION: Final = {
    "Describe": AclOperation.DESCRIBE,
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
}


def admin_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """librdkafka configuration from aiokafka-style client options (shared.plumbing.kafka.client_options;
    for TLS, `ssl_cafile` instead of an ssl_context)."""
    # librdkafka logs at info level to stderr otherwise; errors still raise from the calls
    config: dict[str, Any] = {"bootstrap.servers": options["bootstrap_servers"], "log_level": 3}
    protocol = options.get("security_protocol", "PLAINTEXT")
    config["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        config |= {
            "sasl.mechanism": options["sasl_mechanism"],
            "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"],
        }
    if options.get("ssl_cafile"):
        config["ssl.ca.location"] = str(options["ssl_cafile"])
    return config


def admin_options(settings: CommonSettings) -> dict[str, Any]:
    """The aiokafka-style options of `settings`, with the CA file librdkafka reads itself."""
    options = {key: value for key, value in client_options(settings).items() if key != "ssl_context"}
    if settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    return options


# One binding per (principal, resource, pattern, operation): how a broker lists ACLs.
Binding = tuple[str, ResourceType, str, ResourcePatternType, AclOperation]


def bindings(principal: Principal, acls: Iterable[Acl]) -> set[Binding]:
    return {
        (
            f"User:{principal.user}",
            _RESOURCE[acl.resource_type],
            acl.name,
            _PATTERN[acl.pattern],
            _OPERATION[op],
        )
        for acl in acls
        for op in acl.operations
    }


@dataclass
class AclChanges:
    created: list[Binding] = field(default_factory=list)
    deleted: list[Binding] = field(default_factory=list)
    kept: int = 0


class ClusterAdmin:
    """The provisioning calls, as the cluster's super user (or an operator allowed to Alter)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._admin = AdminClient(admin_config(options))

    def upsert_scram_users(self, passwords: Mapping[str, str]) -> None:
        """Create or update a SCRAM-SHA-512 credential per user."""
        if not passwords:
            return
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        futures = self._admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(user, info, password.encode())
                for user, password in passwords.items()
            ],
            request_timeout=_TIMEOUT,
        )
        for future in futures.values():
            future.result()

    def current_bindings(self, principal: Principal) -> set[Binding]:
        any_name: Any = None  # librdkafka's filter wildcard; the stubs ask for a str
        wanted = AclBindingFilter(
            ResourceType.ANY,
            any_name,
            ResourcePatternType.ANY,
            f"User:{principal.user}",
            any_name,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        found: list[AclBinding] = self._admin.describe_acls(wanted, request_timeout=_TIMEOUT).result()
        return {
            (
                b.principal,
                ResourceType(b.restype),
                b.name,
                ResourcePatternType(b.resource_pattern_type),
                AclOperation(b.operation),
            )
            for b in found
            if b.permission_type == AclPermissionType.ALLOW and b.host == "*"
        }

    def apply_acls(
        self, principals: Iterable[Principal], partner_ids: list[str], prefix: str = "", dry_run: bool = False
    ) -> AclChanges:
        """Make each principal's ACLs on names under `prefix` exactly the derived ones (with
        `dry_run`, only say what that would change)."""
        changes = AclChanges()
        to_create: list[Binding] = []
        to_delete: list[Binding] = []
        for principal in principals:
            derived = bindings(principal, acls_for(principal, partner_ids, prefix))
            current = {b for b in self.current_bindings(principal) if b[2].startswith(prefix)}
            to_create += sorted(derived - current, key=str)
            to_delete += sorted(current - derived, key=str)
            changes.kept += len(derived & current)
        changes.created, changes.deleted = to_create, to_delete
        if dry_run:
            return changes
        if to_create:
            futures = self._admin.create_acls([_binding(b) for b in to_create], request_timeout=_TIMEOUT)
            for future in futures.values():
                future.result()
        if to_delete:
            filters = [AclBindingFilter(*_binding_fields(b)) for b in to_delete]
            for future in self._admin.delete_acls(filters, request_timeout=_TIMEOUT).values():
                future.result()
        return changes


def _binding_fields(binding: Binding) -> tuple[Any, ...]:
    principal, resource, name, pattern, operation = binding
    return (resource, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def _binding(binding: Binding) -> AclBinding:
    return AclBinding(*_binding_fields(binding))
