"""What every command shares: JSON output, failures, API tokens and HTTP calls."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import httpx
import typer

from shared.auth import issue_token
from shared.crypto.keys import KeyRing
from shared.settings import CommonSettings

SignalsUrl = Annotated[str, typer.Option(envvar="SC_SIGNALS_URL", help="Base URL of the signals service.")]
ConsentUrl = Annotated[str, typer.Option(envvar="SC_CONSENT_URL", help="Base URL of the consent service.")]
AuditUrl = Annotated[str, typer.Option(envvar="SC_AUDIT_URL", help="Base URL of the audit service.")]
Token = Annotated[str | None, typer.Option(envvar="SC_API_TOKEN", help="Your API token (Bearer).")]
SIGNALS_URL = "http://127.0.0.1:8001"
CONSENT_URL = "http://127.0.0.1:8002"
AUDIT_URL = "http://127.0.0.1:8003"


def emit(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def fail(document: Any, code: int = 1) -> NoReturn:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False), err=True)
    raise typer.Exit(code)


def token_for(token: str | None, organisation: str | None) -> str:
    """The given API token; in development one derived from the local keys for `organisation`."""
    if token:
        return token
    settings = CommonSettings()
    if not settings.generate_missing_keys or not organisation:
        fail({"error": "no API token: pass --token or set SC_API_TOKEN"}, code=2)
    return issue_token(KeyRing(settings.keys_dir, generate_missing=True).secret("api-tokens"), organisation)


def call(method: str, url: str, **options: Any) -> httpx.Response:
    """One HTTP request; exit 2 when the service cannot be reached."""
    try:
        return httpx.request(method, url, timeout=30, **options)
    except httpx.HTTPError as error:
        fail({"error": f"cannot reach {url}: {error}"}, code=2)


def respond(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> None:
    """Print the body; exit 1 with it on stderr unless the status is one of `ok`."""
    body = response.json() if response.content else {"status": response.status_code}
    if response.status_code in ok:
        emit(body)
        return
    fail(body)
