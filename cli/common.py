"""What every command shares: JSON output, failures, access tokens and HTTP calls."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from shared.client_credentials import ClientCredentials, TokenRequestError, load_private_key
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


OAUTH_ISSUER = "SC_OAUTH_ISSUER"
OAUTH_CLIENT_ID = "SC_OAUTH_CLIENT_ID"
OAUTH_CLIENT_KEY_FILE = "SC_OAUTH_CLIENT_KEY_FILE"
OAUTH_CLIENT_SECRET_FILE = "SC_OAUTH_CLIENT_SECRET_FILE"
OAUTH_CLIENT_KEY_ID = "SC_OAUTH_CLIENT_KEY_ID"


@cache
def _client_credentials(
    issuer: str, client_id: str, key_file: str | None, secret_file: str | None, key_id: str | None, scope: str
) -> ClientCredentials:
    if key_file:
        key = load_private_key(Path(key_file))
        return ClientCredentials.with_private_key(issuer, client_id, key, scope=scope, key_id=key_id)
    assert secret_file
    secret = Path(secret_file).read_text(encoding="utf-8").strip()
    return ClientCredentials.with_secret(issuer, client_id, secret, scope=scope)


def client_credentials(audience: str) -> ClientCredentials | None:
    """The system's own token source, when it is configured: SC_OAUTH_ISSUER (its organisation's
    identity provider), SC_OAUTH_CLIENT_ID and either SC_OAUTH_CLIENT_KEY_FILE (private_key_jwt:
    a PEM key, or the raw Ed25519 key of the key folder; SC_OAUTH_CLIENT_KEY_ID if its key id is
    not its thumbprint) or SC_OAUTH_CLIENT_SECRET_FILE (a client secret, development). The token
    asks for scope `audience`; one source per scope, kept for the process's life."""
    issuer = os.environ.get(OAUTH_ISSUER)
    if not issuer:
        return None
    client_id = os.environ.get(OAUTH_CLIENT_ID)
    key_file, secret_file = os.environ.get(OAUTH_CLIENT_KEY_FILE), os.environ.get(OAUTH_CLIENT_SECRET_FILE)
    if not client_id or bool(key_file) == bool(secret_file):
        fail(
            {
                "error": f"{OAUTH_ISSUER} is set: set {OAUTH_CLIENT_ID} and one of {OAUTH_CLIENT_KEY_FILE}"
                f" (private_key_jwt) or {OAUTH_CLIENT_SECRET_FILE} (client secret)"
            },
            code=2,
        )
    try:
        return _client_credentials(
            issuer, client_id, key_file, secret_file, os.environ.get(OAUTH_CLIENT_KEY_ID), audience
        )
    except (OSError, ValueError) as error:
        fail({"error": f"cannot read the client's key or secret: {error}"}, code=2)


def token_for(
    token: str | None, organisation: str | None, role: Role, audience: str, person: str | None = None
) -> str:
    """The given access token; else one the system obtains by client credentials from its
    identity provider (SC_OAUTH_*: `client_credentials`); else, in development, one from the
    project's own issuer, for `organisation` in `role` (as `person`, if named), addressed to the
    `audience` service."""
    if token:
        return token
    credentials = client_credentials(audience)
    if credentials is not None:
        try:
            return credentials.token()
        except TokenRequestError as error:
            fail({"error": str(error)}, code=2)
    if not organisation or not CommonSettings().generate_missing_keys:
        fail({"error": f"no access token: pass --token, set SC_ACCESS_TOKEN or {OAUTH_ISSUER}"}, code=2)
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
