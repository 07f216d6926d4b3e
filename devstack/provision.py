"""Provision a cluster for safety-chain from the topic table and the registry.

Every principal of the registry (each service, municipality and partner) gets a development
SCRAM password (made once, shared.plumbing.kafka_credentials) and exactly the ACLs that
shared.plumbing.acls derives; every topic is created. Idempotent: `make run`, every test stack
and `safety-chain kafka apply` run it, as the cluster's super user.

    python -m devstack.provision        # docker compose's kafka-init step (development only)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.kafka import ADMIN_PRINCIPAL, KafkaAccess
from shared.contracts.topics import all_topics
from shared.plumbing.acls import Deployment
from shared.plumbing.kafka import create_missing_topics
from shared.plumbing.kafka_admin import AclChanges, ClusterAdmin
from shared.plumbing.kafka_credentials import ensure_passwords, password_path


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
    created = await create_missing_topics(access.client_options(), prefix, all_topics(deployment.partner_ids))
    return Provisioned(created, changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Provision a development cluster that runs outside devstack (docker compose's kafka-init):
    every principal's SCRAM credential from the key ceremony's passwords (`--credentials-dir`,
    default <SC_KEYS_DIR>/kafka), the derived ACLs and the topics, as the super user `admin`.

    The apache/kafka image cannot add a SCRAM credential when it formats its storage, so its
    admin is a static SASL/PLAIN user of an internal listener, with the password the broker
    made (`--admin-password-file`). That password becomes admin's in the credentials folder, and
    with `--plain-bootstrap-servers` admin's SCRAM credential is made there first; everything
    else goes through SCRAM on SC_KAFKA_BOOTSTRAP_SERVERS. Retries while the broker settles;
    idempotent. Refuses production: a real cluster's users come from its own tooling (Strimzi)."""
    from pydantic import ValidationError

    from shared.plumbing.settings import CommonSettings, Environment

    try:
        settings = CommonSettings()
    except ValidationError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    if settings.environment is Environment.PRODUCTION:
        print("refused: development provisioning never runs in production", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="python -m devstack.provision", description="Provision a development Kafka cluster."
    )
    parser.add_argument("--config-dir", type=Path, default=settings.config_dir)
    parser.add_argument("--credentials-dir", type=Path, default=settings.kafka_credentials_folder)
    parser.add_argument("--prefix", default=settings.topic_prefix)
    parser.add_argument("--admin-password-file", type=Path, help="the broker's admin password")
    parser.add_argument("--plain-bootstrap-servers", help="a listener where admin is a SASL/PLAIN user")
    parser.add_argument("--attempts", type=int, default=30, help="tries, 2 s apart (default: 30)")
    args = parser.parse_args(argv)
    if args.plain_bootstrap_servers and args.admin_password_file is None:
        parser.error("--plain-bootstrap-servers needs --admin-password-file")

    admin_password = None
    if args.admin_password_file is not None:
        admin_password = args.admin_password_file.read_text(encoding="utf-8").strip()
        if not admin_password:
            print(f"refused: {args.admin_password_file} is empty", file=sys.stderr)
            return 2
        stored = password_path(args.credentials_dir, ADMIN_PRINCIPAL)
        args.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not stored.exists() or stored.read_text(encoding="utf-8").strip() != admin_password:
            draft = stored.with_name(f".{stored.name}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(admin_password + "\n")
            draft.replace(stored)

    access = KafkaAccess(settings.kafka_bootstrap_servers, args.credentials_dir)
    for attempt in range(1, args.attempts + 1):
        try:
            if args.plain_bootstrap_servers and admin_password is not None:
                ClusterAdmin(
                    {
                        "bootstrap_servers": args.plain_bootstrap_servers,
                        "security_protocol": "SASL_PLAINTEXT",
                        "sasl_mechanism": "PLAIN",
                        "sasl_plain_username": ADMIN_PRINCIPAL,
                        "sasl_plain_password": admin_password,
                    }
                ).upsert_scram_users({ADMIN_PRINCIPAL: admin_password})
            done = asyncio.run(provision(access, args.config_dir, args.prefix))
        except Exception as error:  # the broker may still be settling: retry, then give up
            print(f"attempt {attempt}/{args.attempts}: {type(error).__name__}: {error}", file=sys.stderr)
            if attempt == args.attempts:
                return 1
            time.sleep(2)
        else:
            print(
                f"provisioned {settings.kafka_bootstrap_servers}: {len(done.topics_created)} topics created,"
                f" {len(done.acls.created)} ACLs added, {len(done.acls.deleted)} removed,"
                f" {done.acls.kept} unchanged"
            )
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
