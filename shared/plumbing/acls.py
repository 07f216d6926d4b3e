"""Who may do what on the bus: Kafka ACLs derived from the topic table (shared.contracts.topics).

Every principal gets exactly what the table says its party produces and consumes, plus its own
consumer groups and, for a transactional service, its own transactional ids; nothing else. The
same derivation feeds the Strimzi KafkaUsers (deploy/k8s), the local broker (devstack) and
`safety-chain kafka acls apply` for any cluster, so what is tested on the local broker's real
authorizer is what production enforces. Names carry the deployment's topic prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from shared.contracts.registry import RegistryFile
from shared.contracts.topics import (
    CENTRAL_TOPICS,
    PARTNER_TOPIC_TEMPLATE,
    SERVICES,
    TRANSACTIONAL,
    Party,
    TopicSpec,
    partner_topic,
)
from shared.contracts.yamlload import safe_load

ResourceType = Literal["topic", "group", "transactionalId"]
PatternType = Literal["literal", "prefix"]
Operation = Literal["Describe", "Read", "Write"]

CONSUME: Final[tuple[Operation, ...]] = ("Describe", "Read")
PRODUCE: Final[tuple[Operation, ...]] = ("Describe", "Write")
CONSUME_AND_PRODUCE: Final[tuple[Operation, ...]] = ("Describe", "Read", "Write")

PARTNER_TOPIC_PREFIX: Final = PARTNER_TOPIC_TEMPLATE.partition("{")[0]


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule for one principal; `allow` is the only kind we grant."""

    resource_type: ResourceType
    name: str
    operations: tuple[Operation, ...]
    pattern: PatternType = "literal"


@dataclass(frozen=True)
class Principal:
    """A Kafka principal (`User:<user>`) and the party it plays in the topic table."""

    user: str
    party: Party
    organisation: str  # the organisation id; for a service, the service id


def operations_of(party: Party, spec: TopicSpec) -> tuple[Operation, ...]:
    reads, writes = party in spec.consumers, party in spec.producers
    if reads and writes:
        return CONSUME_AND_PRODUCE
    return CONSUME if reads else PRODUCE if writes else ()


def _own_groups(owner: str, prefix: str) -> list[Acl]:
    """Consumer groups `<owner>` and `<owner>.<anything>`.

    Not a bare `<owner>` prefix: ids may be prefixes of each other (`zvh-amsterdam`,
    `zvh-amsterdam-noord`), and a group ACL on someone else's group lets one join it and take
    its partitions away. Ids hold no dots, so `<owner>.` can never match another owner.
    """
    return [
        Acl("group", f"{prefix}{owner}", ("Read",)),
        Acl("group", f"{prefix}{owner}.", ("Read",), pattern="prefix"),
    ]


def acls_for(principal: Principal, partner_ids: Sequence[str], prefix: str = "") -> list[Acl]:
    """Every ACL of `principal`, for a deployment with these partners and topic prefix."""
    party = principal.party
    acls = [
        Acl("topic", spec.prefixed(prefix), operations)
        for spec in CENTRAL_TOPICS
        if (operations := operations_of(party, spec))
    ]
    template = partner_topic("{partner}")
    if party is Party.PARTNER:
        # a partner reaches its own topic only
        own = partner_topic(principal.organisation)
        if operations := operations_of(party, template):
            acls.append(Acl("topic", own.prefixed(prefix), operations))
    elif operations := operations_of(party, template):
        # a service on the partner topics reaches all of them, the ones of partners added later too
        acls.append(Acl("topic", prefix + PARTNER_TOPIC_PREFIX, operations, pattern="prefix"))
    if (
        any(party in spec.consumers for spec in (*CENTRAL_TOPICS, template))
        and party is not Party.MUNICIPALITY
    ):
        acls.extend(_own_groups(principal.organisation, prefix))
    if party in TRANSACTIONAL:
        # consume-transform-produce: transactional.id is `<service>-<SC_INSTANCE_ID>`
        acls.append(
            Acl("transactionalId", f"{prefix}{principal.organisation}-", ("Describe", "Write"), "prefix")
        )
    return acls


def principal_of(kind: str, organisation: str, kafka_principal: str | None = None) -> Principal | None:
    """The principal an organisation of the registry connects as (`kafka_principal`, default
    `User:<id>`) and the party it plays; None for the platform operator, which works through
    the HTTP APIs only."""
    user = (kafka_principal or f"User:{organisation}").removeprefix("User:")
    if kind == "municipality":
        return Principal(user, Party.MUNICIPALITY, organisation)
    if kind == "partner":
        return Principal(user, Party.PARTNER, organisation)
    if kind == "service":
        return Principal(user, Party(organisation), organisation)
    return None


@dataclass(frozen=True)
class Deployment:
    """Who connects to the cluster: the principals of the registry and the partners' ids."""

    principals: list[Principal]
    partner_ids: list[str]

    @classmethod
    def from_registry(cls, config_dir: Path) -> Deployment:
        raw = safe_load((Path(config_dir) / "organisations.yaml").read_text(encoding="utf-8"))
        organisations = RegistryFile.model_validate(raw).organisations
        principals = [
            principal
            for org in organisations
            if (principal := principal_of(org.kind, org.id, org.kafka_principal)) is not None
        ]
        return cls(principals, [org.id for org in organisations if org.kind == "partner"])

    def principal(self, user: str) -> Principal:
        for principal in self.principals:
            if principal.user == user:
                return principal
        raise LookupError(f"no principal {user!r} in the registry")


def service_principals() -> list[Principal]:
    return [Principal(service.value, service, service.value) for service in SERVICES]
