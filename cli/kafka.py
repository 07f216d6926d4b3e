"""Commands of the platform team: the cluster's principals and ACLs, from the topic table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.plumbing.acls import Deployment, acls_for
from shared.plumbing.kafka_admin import ClusterAdmin, admin_options
from shared.plumbing.settings import CommonSettings

kafka_app = typer.Typer(help="The Kafka cluster: principals and ACLs (platform team).", no_args_is_help=True)
acls_app = typer.Typer(
    help="ACLs derived from the topic table (shared/contracts/topics.py).", no_args_is_help=True
)
kafka_app.add_typer(acls_app, name="acls")

Prefix = Annotated[
    str | None, typer.Option(help="Topic prefix of the deployment (default: SC_TOPIC_PREFIX).")
]


def _deployment(settings: CommonSettings) -> Deployment:
    return Deployment.from_registry(settings.config_dir)


@acls_app.command("show")
def show(
    principal: Annotated[str | None, typer.Option(help="One principal only, e.g. gm0363.")] = None,
    prefix: Prefix = None,
) -> None:
    """Print the ACLs every principal of the registry gets (nothing is contacted)."""
    settings = CommonSettings()
    deployment = _deployment(settings)
    chosen = [deployment.principal(principal)] if principal else deployment.principals
    table = Table("principal", "party", "resource", "name", "pattern", "operations")
    for each in chosen:
        for acl in acls_for(
            each, deployment.partner_ids, settings.topic_prefix if prefix is None else prefix
        ):
            table.add_row(
                f"User:{each.user}",
                each.party.value,
                acl.resource_type,
                acl.name,
                acl.pattern,
                ", ".join(acl.operations),
            )
    Console().print(table)


@acls_app.command("apply")
def apply(
    prefix: Prefix = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would change.")] = False,
) -> None:
    """Make the cluster's ACLs of every principal in the registry exactly the derived ones:
    add what is missing, remove what is no longer derived. Idempotent. Connects as
    SC_KAFKA_SASL_USERNAME (in development, default: the local broker's admin), which must be
    allowed to alter the cluster's ACLs."""
    settings = CommonSettings().acting_as("admin")
    deployment = _deployment(settings)
    changes = ClusterAdmin(admin_options(settings)).apply_acls(
        deployment.principals,
        deployment.partner_ids,
        settings.topic_prefix if prefix is None else prefix,
        dry_run=dry_run,
    )
    verb = ("would add", "would remove") if dry_run else ("added", "removed")
    for label, bindings in zip(verb, (changes.created, changes.deleted), strict=True):
        for principal, resource, name, pattern, operation in bindings:
            typer.echo(f"{label} {principal} {operation.name} on {resource.name} {name} ({pattern.name})")
    typer.echo(
        f"{len(changes.created)} {verb[0]}, {len(changes.deleted)} {verb[1]}, {changes.kept} unchanged"
    )
