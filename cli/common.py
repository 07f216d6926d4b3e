"""What every command shares: JSON output, failures, access tokens and HTTP calls."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import httpx
import typer

from shared.contracts.crypto.keys import MissingKeyError
from shared.plumbing.credentials import DevelopmentIssuer
from shared.plumbing.policy import Role
from shared.plumbing.settings import CommonSettings

SignalsUrl = Annotated[str, typer.Option(envvar="SC_SIGNALS_URL", help="Base URL of the signals service.")]
ConsentUrl = Annotated[str, typer.Option(envvar="SC_CONSENT_URL", help="Base URL of the consent service.")]
AuditUrl = Annotated[str, typer.Option(envvar="SC_AUDIT_URL", help="Base URL of the audit service.")]
Token = Annotated[
    str | None,
    typer.Option(envvar="SC_ACCESS_TOKEN", help="Your access token (from your identity provider)."),
]
PLATFORM = "safety-chain"
"""The platform operator's organisation id (its privacy officer reads the whole audit log)."""
SIGNALS_URL = "http://127.0.0.1:8001"
CONSENT_URL = "http://127.0.0.1:8002"
AUDIT_URL = "http://127.0.0.1:8003"


def emit(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def fail(document: Any, code: int = 1) -> NoReturn:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False), err=True)
    raise typer.Exit(code)


def development_issuer() -> DevelopmentIssuer:
    """The project's own token issuer; development only (its key is made with the others)."""
    settings = CommonSettings()
    if not settings.generate_missing_keys:
        fail({"error": "no development issuer in production: get a token from your identity provider"}, 2)
    try:
        return DevelopmentIssuer.from_keys(settings.keys_dir)
    except MissingKeyError:
        fail({"error": f"no development keys in {settings.keys_dir}: `make run` makes them"}, 2)


def token_for(
    token: str | None, organisation: str | None, role: Role, audience: str, person: str | None = None
) -> str:
    """The given access token; in development one from the project's own issuer, for
    `organisation` in `role` (as `person`, if named), addressed to the `audience` service."""
    if token:
        return token
    if not organisation or not CommonSettings().generate_missing_keys:
        fail({"error": "no access token: pass --token or set SC_ACCESS_TOKEN"}, code=2)
    return development_issuer().issue(organisation, [role], audience, person=person)


def bearer(
    token: str | None, organisation: str | None, role: Role, audience: str, person: str | None = None
) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(token, organisation, role, audience, person)}"}


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
