"""Provision a cluster for safety-chain from the topic table and the registry.

Every principal of the registry (each service, municipality and partner) gets a development
SCRAM password (made once, shared.kafka_credentials) and exactly the ACLs shared.acls derives;
every topic is created. Idempotent: `make run`, every test stack and `safety-chain kafka apply`
run it, as the cluster's super user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.kafka import KafkaAccess
from shared.acls import Deployment, topics_for
from shared.kafka import create_missing_topics
from shared.kafka_admin import AclChanges, ClusterAdmin
from shared.kafka_credentials import ensure_passwords


@dataclass(frozen=True)
class Provisioned:
    topics_created: list[str]
    acls: AclChanges


async def provision(access: KafkaAccess, config_dir: Path, prefix: str = "") -> Provisioned:
    """Users (development passwords), ACLs and topics of one deployment under `prefix`."""
    deployment = Deployment.from_registry(config_dir)
    changes = AclChanges()
    if access.credentials_dir is not None:  # an open cluster (no authorizer) has neither
        admin = ClusterAdmin(access.client_options())
        passwords = ensure_passwords(access.credentials_dir, [p.user for p in deployment.principals])
        admin.upsert_scram_users(passwords)
        changes = admin.apply_acls(deployment.principals, deployment.partner_ids, prefix)
    created = await create_missing_topics(access.client_options(), prefix, topics_for(deployment.partner_ids))
    return Provisioned(created, changes)
