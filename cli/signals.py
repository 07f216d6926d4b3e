"""Commands of municipal systems: publish signals, issue API tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import SIGNALS_URL, SignalsUrl, Token, call, emit, fail, token_for
from shared.auth import issue_token
from shared.crypto.keys import KeyRing
from shared.settings import CommonSettings

signal_app = typer.Typer(help="Publish signals (municipal systems).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of municipalities and partners.", no_args_is_help=True)


@signal_app.command("publish")
def publish(
    file: Annotated[str, typer.Argument(help="JSON file with one signal, or - for standard input.")],
    token: Token = None,
    signals_url: SignalsUrl = SIGNALS_URL,
) -> None:
    """Submit a signal; prints {"signal_id": ...}; exits 1 with the errors when rejected."""
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        named = json.loads(body).get("municipality")
    except (ValueError, AttributeError):
        named = None
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token_for(token, named if isinstance(named, str) else None)}",
    }
    response = call("POST", f"{signals_url}/v1/signals", content=body, headers=headers)
    if response.status_code != 202:
        fail(response.json() if response.content else {"status": response.status_code})
    emit({"signal_id": response.json()["signal_id"], "status": response.json()["status"]})


@token_app.command("issue")
def issue(organisation: Annotated[str, typer.Argument(help="The organisation, e.g. gm0363.")]) -> None:
    """Print the API token of an organisation (needs the api-tokens secret)."""
    settings = CommonSettings()
    keys = KeyRing(settings.keys_dir, generate_missing=settings.generate_missing_keys)
    typer.echo(issue_token(keys.secret("api-tokens"), organisation))
