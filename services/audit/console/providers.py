"""People sign in to the console at their organisation's identity provider: OpenID Connect,
authorization code flow with PKCE (S256), done by authlib.

Which providers: every issuer in config/issuers.yaml with a `sign_in` client (its client id and
secret file); the person chooses their organisation, the console sends them to the provider that
speaks for it. What comes back is checked as everything else is: the access token (audience
`audit`) is verified by the service's `Access` and allowed by the one policy before it becomes
the session (session.py), and it must come from the provider the person was sent to. The ID
token is checked by authlib (signature, issuer, audience, nonce) and kept, in its own HttpOnly
cookie, only to end the session at the provider on sign-out (RP-Initiated Logout 1.0) and to
find the way back when the session ends.

The session lives as long as the access token. When it has ended, the browser goes back to the
provider that issued it: while the person's session there lives, the provider answers at once,
without a prompt; a person disabled or signed out there is asked to sign in again, and refused.

A sign-in in flight (state, PKCE verifier, nonce, where to go afterwards) is kept in a signed,
short-lived cookie of its own (Starlette's SessionMiddleware, SameSite=Lax: the provider's
redirect back is a cross-site navigation) under a key derived from the audit service's
signing key, so that any audit replica can finish a sign-in another one started.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from shared.contracts.registry import Registry
from shared.plumbing.credentials import Issuer
from shared.plumbing.logging import get_logger

log = get_logger()

SIGN_IN_STATE_COOKIE: Final = "sc_console_sign_in"
SIGN_IN_STATE_SECONDS: Final = 600
"""How long a person may take at their provider's login page."""
PROVIDER_COOKIE: Final = "sc_console_provider"
"""Holds the ID token of a session that began at an identity provider."""
PENDING: Final = "pending"
"""The session key under which sign-ins in flight wait: state -> provider and next page."""
STATE_KEY_INFO: Final = b"safety-chain console sign-in state v1"


@dataclass(frozen=True)
class Provider:
    """One organisation's identity provider, as the console uses it."""

    key: str  # short and stable: names it in URLs and in the sign-in state
    issuer: Issuer
    client: StarletteOAuth2App

    @property
    def organisations(self) -> tuple[str, ...]:
        return tuple(self.issuer.organisations) if isinstance(self.issuer.organisations, list) else ()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def provider_key(issuer: str) -> str:
    return hashlib.sha256(issuer.encode()).hexdigest()[:16]


class Providers:
    """The identity providers people sign in at, by organisation and by issuer."""

    def __init__(self, issuers: list[Issuer]) -> None:
        self._oauth = OAuth()
        self._by_key: dict[str, Provider] = {}
        for issuer in issuers:
            if issuer.sign_in is None:
                continue
            key = provider_key(issuer.issuer)
            client = self._oauth.register(
                name=key,
                client_id=issuer.sign_in.client_id,
                client_secret=issuer.sign_in.client_secret_file.read_text(encoding="utf-8").strip(),
                server_metadata_url=issuer.discovery_url,
                client_kwargs={"scope": issuer.sign_in.scope, "code_challenge_method": "S256", "timeout": 10},
            )
            assert isinstance(client, StarletteOAuth2App)
            self._by_key[key] = Provider(key, issuer, client)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._by_key.values())

    def get(self, key: str) -> Provider | None:
        return self._by_key.get(key)

    def for_organisation(self, organisation: str) -> Provider | None:
        return next((p for p in self._by_key.values() if organisation in p.organisations), None)

    def of_issuer(self, issuer: str) -> Provider | None:
        return self._by_key.get(provider_key(issuer))

    def origins(self) -> set[str]:
        """Where the providers are (scheme, host and port): the sign-in and sign-out forms lead
        there."""
        return {_origin(provider.issuer.issuer) for provider in self._by_key.values()}

    def organisations(self, registry: Registry) -> list[dict[str, str]]:
        """Who may sign in here, as the sign-in page lists them: id and name, by name."""
        ids = {org for provider in self._by_key.values() for org in provider.organisations}
        named = [{"id": org, "name": registry.get(org).name} for org in ids if org in registry.all_ids()]
        return sorted(named, key=lambda org: org["name"].lower())


def state_key(signing_key: Ed25519PrivateKey) -> bytes:
    """The key that signs sign-in state: derived from the audit service's signing key (which
    every replica holds), never that key itself."""
    material = signing_key.private_bytes_raw()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=STATE_KEY_INFO).derive(material)


def keep_sign_in_state(app: FastAPI, key: bytes, *, secure: bool) -> None:
    """The signed cookie that carries sign-ins in flight. Secure (production, https): the
    `__Host-` name, Path=/; a laptop's plain http: scoped to /console."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=key.hex(),
        session_cookie=("__Host-" if secure else "") + SIGN_IN_STATE_COOKIE,
        max_age=SIGN_IN_STATE_SECONDS,
        path="/" if secure else "/console",
        same_site="lax",
        https_only=secure,
    )


def providers_of(request: Request) -> Providers:
    providers: Providers = request.app.state.console_providers
    return providers


async def send_to_provider(request: Request, provider: Provider, next_page: str, language: str) -> Response:
    """302 to `provider`'s authorization endpoint; what the callback needs is kept in the
    sign-in state cookie, keyed by the request's `state`."""
    redirect_uri = str(request.url_for("provider_callback"))
    found = await provider.client.create_authorization_url(redirect_uri, ui_locales=language)
    await provider.client.save_authorize_data(request, redirect_uri=redirect_uri, **found)
    pending: dict[str, Any] = dict(request.session.get(PENDING, {}))
    pending[found["state"]] = {"provider": provider.key, "next": next_page}
    request.session[PENDING] = dict(list(pending.items())[-3:])  # a few tabs at most
    log.info("console_sign_in_started", provider=provider.issuer.issuer)
    return RedirectResponse(found["url"], status_code=302)


@dataclass(frozen=True)
class ProviderAnswer:
    """What a provider's redirect back brought: the tokens, where the person was going."""

    provider: Provider
    access_token: str
    id_token: str
    next_page: str


class SignInFailed(Exception):
    """The provider's answer is no sign-in: refused there, tampered with, or too late."""

    def __init__(self, reason: str, provider: Provider | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider = provider


async def provider_answer(request: Request, state: str | None) -> ProviderAnswer:
    """The tokens for the sign-in `state` names, from its provider's token endpoint."""
    pending: dict[str, Any] = dict(request.session.get(PENDING, {}))
    waiting = pending.pop(state or "", None)
    request.session[PENDING] = pending
    provider = providers_of(request).get(waiting["provider"]) if waiting else None
    if waiting is None or provider is None:
        raise SignInFailed("no sign-in of this browser is waiting for this answer")
    if request.query_params.get("error"):
        raise SignInFailed(f"the provider refused: {request.query_params['error']}", provider)
    try:
        token = await provider.client.authorize_access_token(request)  # type: ignore[no-untyped-call]
    except OAuthError as error:
        raise SignInFailed(f"the provider's answer does not hold: {error.error}", provider) from error
    access_token, id_token = token.get("access_token"), token.get("id_token")
    if not isinstance(access_token, str) or not isinstance(id_token, str):
        raise SignInFailed("the provider sent no access token or no ID token", provider)
    return ProviderAnswer(provider, access_token, id_token, str(waiting["next"]))
