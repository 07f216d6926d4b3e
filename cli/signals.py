"""Commands of municipal systems: publish signals; development access tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    OAUTH_ISSUER,
    SIGNALS_URL,
    SignalsUrl,
    Token,
    call,
    client_credentials,
    development_issuer,
    emit,
    fail,
    token_for,
)
from shared.client_credentials import TokenRequestError
from shared.plumbing.credentials import DEFAULT_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS, RevocationList
from shared.plumbing.policy import Role
from shared.plumbing.settings import CommonSettings

signal_app = typer.Typer(help="Publish signals (municipal systems).", no_args_is_help=True)
token_app = typer.Typer(
    help="Access tokens: by client credentials; in development from the project's own issuer; revocation.",
    no_args_is_help=True,
)
SERVICES = ("signals", "consent", "audit")


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
        "authorization": (
            f"Bearer {token_for(token, named if isinstance(named, str) else None, Role.PUBLISHER, 'signals')}"
        ),
    }
    response = call("POST", f"{signals_url}/v1/signals", content=body, headers=headers)
    if response.status_code != 202:
        fail(response.json() if response.content else {"status": response.status_code})
    emit({"signal_id": response.json()["signal_id"], "status": response.json()["status"]})


@token_app.command("issue")
def issue(
    organisation: Annotated[str, typer.Argument(help="The organisation, e.g. gm0363.")],
    role: Annotated[list[Role], typer.Option("--role", help="A role (repeat for more).")],
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="A service (repeat); default all three.")
    ] = None,
    person: Annotated[str | None, typer.Option(help="Who (preferred_username); for four eyes.")] = None,
    lifetime: Annotated[
        int, typer.Option(min=60, max=MAX_LIFETIME_SECONDS, help="Seconds until it expires.")
    ] = DEFAULT_LIFETIME_SECONDS,
) -> None:
    """Print a development access token (JWT) the local services accept. Development only: in
    production your organisation's identity provider issues them."""
    typer.echo(
        development_issuer().issue(
            organisation, role, audience or list(SERVICES), person=person, lifetime_seconds=lifetime
        )
    )


@token_app.command("fetch")
def fetch(
    audience: Annotated[str, typer.Option(help="The service the token is for (its scope).")] = "signals",
) -> None:
    """Print an access token your system obtains from its organisation's identity provider by
    client credentials (SC_OAUTH_ISSUER, SC_OAUTH_CLIENT_ID, SC_OAUTH_CLIENT_KEY_FILE or
    SC_OAUTH_CLIENT_SECRET_FILE)."""
    if audience not in SERVICES:
        fail({"error": f"audience must be one of {', '.join(SERVICES)}"}, code=2)
    credentials = client_credentials(audience)
    if credentials is None:
        fail({"error": f"set {OAUTH_ISSUER} and the client's id and key or secret"}, code=2)
    try:
        typer.echo(credentials.token())
    except TokenRequestError as error:
        fail({"error": str(error)}, code=2)


@token_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token's jti.")]) -> None:
    """Refuse a token before it expires: adds its id to the revocation list (SC_REVOKED_TOKENS_FILE),
    which the services re-read when it changes."""
    settings = CommonSettings()
    RevocationList(settings.revoked_tokens_file).revoke(token_id)
    emit({"revoked": token_id, "list": str(settings.revoked_tokens_file)})
