"""Commands of chain partners: receive deliveries through the partner SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from partner import ErasureRequest, PartnerClient, PartnerIdentity, ReceivedSignal
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.registry import Registry
from shared.plumbing.kafka import client_options
from shared.plumbing.settings import CommonSettings

partner_app = typer.Typer(help="Receive deliveries (chain partners).", no_args_is_help=True)


@partner_app.command("receive")
def receive(
    partner: Annotated[str, typer.Option(help="Your partner id, e.g. veilig-thuis-amsterdam.")],
    count: Annotated[int | None, typer.Option(help="Stop after this many deliveries.")] = None,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 10.0,
    group: Annotated[str | None, typer.Option(help="Consumer group (default: your partner id).")] = None,
    acknowledge: Annotated[
        bool, typer.Option("--ack/--peek", help="Sign receipts and move on, or only look from the start.")
    ] = True,
) -> None:
    """Print one JSON object per new delivery on your topic, verified and decrypted with your keys
    (and one {"erasure_notice": ...} per erasure notice: erase what you hold under its pseudonym)."""
    settings = CommonSettings().acting_as(partner)  # connect to Kafka as the partner itself
    # The partner's own key pairs only; consent's key is public, from the registry.
    keys = KeyRing(
        settings.keys_dir,
        generate_missing=settings.generate_missing_keys,
        scope=KeyScope.organisation(partner),
    )
    registry = Registry.load(settings.config_dir, keys)
    client = PartnerClient(
        PartnerIdentity(partner, keys.x25519_private(partner), keys.ed25519_private(partner)),
        registry.ed25519_public("consent"),
        client_options(settings),
        settings.topic_prefix,
        group,
    )

    async def show(delivery: ReceivedSignal) -> None:
        typer.echo(delivery.model_dump_json())

    async def show_erasure(notice: ErasureRequest) -> None:
        # Shown to the operator, who erases; the receipt records the notice as carried out.
        typer.echo(json.dumps({"erasure_notice": notice.model_dump(mode="json")}))

    if acknowledge:
        asyncio.run(client.process(show, count, timeout, on_erasure=show_erasure))
    else:
        for delivery in asyncio.run(client.read(count, timeout)):
            typer.echo(delivery.model_dump_json())
