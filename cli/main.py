"""`safety-chain`: a thin client of the services' HTTP APIs and of the partner SDK."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from partner.receiver import PartnerReceiver
from shared.crypto.keys import KeyRing
from shared.kafka import client_options
from shared.settings import CommonSettings

app = typer.Typer(
    help="safety-chain: exchange safety signals between municipalities and chain partners.",
    no_args_is_help=True,
)
signal_app = typer.Typer(help="Publish signals (municipal systems).", no_args_is_help=True)
partner_app = typer.Typer(help="Receive deliveries (chain partners).", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the audit log (privacy officers).", no_args_is_help=True)
app.add_typer(signal_app, name="signal")
app.add_typer(partner_app, name="partner")
app.add_typer(audit_app, name="audit")

SignalsUrl = Annotated[str, typer.Option(envvar="SC_SIGNALS_URL", help="Base URL of the signals service.")]
AuditUrl = Annotated[str, typer.Option(envvar="SC_AUDIT_URL", help="Base URL of the audit service.")]


def _emit(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _fail(document: Any, code: int = 1) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False), err=True)
    raise typer.Exit(code)


@signal_app.command("publish")
def publish(
    file: Annotated[str, typer.Argument(help="JSON file with one signal, or - for standard input.")],
    signals_url: SignalsUrl = "http://127.0.0.1:8001",
) -> None:
    """Submit a signal; prints {"signal_id": ...}; exits 1 with the errors when rejected."""
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        response = httpx.post(
            f"{signals_url}/v1/signals",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError as error:
        _fail({"error": f"signals service unreachable at {signals_url}: {error}"}, code=2)
    if response.status_code == 202:
        _emit({"signal_id": response.json()["signal_id"]})
        return
    _fail(response.json() if response.content else {"status": response.status_code})


@partner_app.command("receive")
def receive(
    partner: Annotated[str, typer.Option(help="Your partner id, e.g. veilig-thuis-amsterdam.")],
    count: Annotated[int | None, typer.Option(help="Stop after this many deliveries.")] = None,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 10.0,
    group: Annotated[str | None, typer.Option(help="Consumer group: continue where it left off.")] = None,
) -> None:
    """Print one JSON object per delivery on your topic, decrypted with your key."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    receiver = PartnerReceiver(
        partner, keys.x25519_private(partner), client_options(settings), settings.topic_prefix, group
    )
    for delivery in receiver.receive_sync(count, timeout):
        typer.echo(delivery.model_dump_json())


def _get(url: str, params: dict[str, str] | None = None) -> httpx.Response:
    try:
        return httpx.get(url, params=params, timeout=30)
    except httpx.HTTPError as error:
        _fail({"error": f"audit service unreachable: {error}"}, code=2)
        raise  # unreachable: _fail exits


@audit_app.command("records")
def records(
    signal_id: Annotated[str | None, typer.Option(help="Only the records of this signal.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Only the records of this request.")] = None,
    audit_url: AuditUrl = "http://127.0.0.1:8003",
) -> None:
    """Print audit records as JSON."""
    params = {
        name: value
        for name, value in {"signal_id": signal_id, "correlation_id": correlation_id}.items()
        if value
    }
    response = _get(f"{audit_url}/v1/audit/records", params)
    if response.status_code != 200:
        _fail(response.json())
    _emit(response.json())


@audit_app.command("verify")
def verify(audit_url: AuditUrl = "http://127.0.0.1:8003") -> None:
    """Exit 0 when the audit chain is intact; otherwise exit 1 naming the first bad record."""
    response = _get(f"{audit_url}/v1/audit/verify")
    if response.status_code == 200:
        _emit(response.json())
        return
    _fail(response.json())


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name=os.path.basename(sys.argv[0]))
