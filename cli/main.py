"""`safety-chain`: a thin client of the services' HTTP APIs and of the partner SDK."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from partner import PartnerClient, PartnerIdentity, ReceivedSignal
from shared.auth import issue_token
from shared.crypto.keys import KeyRing
from shared.kafka import client_options
from shared.registry import Registry
from shared.settings import CommonSettings

app = typer.Typer(
    help="safety-chain: exchange safety signals between municipalities and chain partners.",
    no_args_is_help=True,
)
signal_app = typer.Typer(help="Publish signals (municipal systems).", no_args_is_help=True)
partner_app = typer.Typer(help="Receive deliveries (chain partners).", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the audit log (privacy officers).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of municipal systems.", no_args_is_help=True)
subject_app = typer.Typer(help="Subjects' rights: erasure.", no_args_is_help=True)
app.add_typer(signal_app, name="signal")
app.add_typer(partner_app, name="partner")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
app.add_typer(subject_app, name="subject")

SignalsUrl = Annotated[str, typer.Option(envvar="SC_SIGNALS_URL", help="Base URL of the signals service.")]
AuditUrl = Annotated[str, typer.Option(envvar="SC_AUDIT_URL", help="Base URL of the audit service.")]


def _emit(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _fail(document: Any, code: int = 1) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False), err=True)
    raise typer.Exit(code)


def _token(token: str | None, organisation: str | None) -> str:
    """The given API token; in development one derived from the local keys for `organisation`."""
    if token:
        return token
    settings = CommonSettings()
    if not settings.generate_missing_keys or not organisation:
        _fail({"error": "no API token: pass --token or set SC_API_TOKEN"}, code=2)
    assert organisation is not None
    return issue_token(KeyRing(settings.keys_dir, generate_missing=True).secret("api-tokens"), organisation)


Token = Annotated[str | None, typer.Option(envvar="SC_API_TOKEN", help="Your API token (Bearer).")]


@signal_app.command("publish")
def publish(
    file: Annotated[str, typer.Argument(help="JSON file with one signal, or - for standard input.")],
    token: Token = None,
    signals_url: SignalsUrl = "http://127.0.0.1:8001",
) -> None:
    """Submit a signal; prints {"signal_id": ...}; exits 1 with the errors when rejected."""
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        named = json.loads(body).get("municipality")
    except (ValueError, AttributeError):
        named = None
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {_token(token, named if isinstance(named, str) else None)}",
    }
    try:
        response = httpx.post(f"{signals_url}/v1/signals", content=body, headers=headers, timeout=30)
    except httpx.HTTPError as error:
        _fail({"error": f"signals service unreachable at {signals_url}: {error}"}, code=2)
    if response.status_code == 202:
        _emit({"signal_id": response.json()["signal_id"], "status": response.json()["status"]})
        return
    _fail(response.json() if response.content else {"status": response.status_code})


@token_app.command("issue")
def issue(organisation: Annotated[str, typer.Argument(help="The municipality, e.g. gm0363.")]) -> None:
    """Print the API token of a municipality (needs the signals service's api-tokens secret)."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    typer.echo(issue_token(keys.secret("api-tokens"), organisation))


@subject_app.command("erase")
def erase(
    pseudonym: Annotated[str, typer.Argument(help="The subject pseudonym (32 hex digits).")],
    municipality: Annotated[str, typer.Option(help="The municipality asking for erasure.")],
    token: Token = None,
    signals_url: SignalsUrl = "http://127.0.0.1:8001",
) -> None:
    """Destroy the subject's data key: all its stored payloads become unreadable."""
    headers = {"authorization": f"Bearer {_token(token, municipality)}"}
    try:
        response = httpx.post(f"{signals_url}/v1/subjects/{pseudonym}/erasure", headers=headers, timeout=30)
    except httpx.HTTPError as error:
        _fail({"error": f"signals service unreachable at {signals_url}: {error}"}, code=2)
    if response.status_code == 202:
        _emit(response.json())
        return
    _fail(response.json() if response.content else {"status": response.status_code})


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
    """Print one JSON object per new delivery on your topic, verified and decrypted with your keys."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
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

    if acknowledge:
        asyncio.run(client.process(show, count, timeout))
    else:
        for delivery in asyncio.run(client.read(count, timeout)):
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
