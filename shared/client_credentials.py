"""Access tokens for a system, by OAuth 2.0 client credentials: what a municipal system or a
chain partner configures is its organisation's issuer and a client id, not a token.

    tokens = ClientCredentials.with_private_key(issuer, "gm0363-system", key, scope="signals")
    headers = {"authorization": f"Bearer {tokens()}"}

The client proves itself with `private_key_jwt` (RFC 7523, as the NL GOV OAuth profile prefers):
an assertion signed with the organisation's key (Ed25519: EdDSA; an EC or RSA key: ES256 or
PS256), or, in development, with a client secret (`client_secret_basic`). The token endpoint
comes from the issuer's OpenID discovery document. The token is kept and fetched again
`REFRESH_MARGIN_SECONDS` before it expires (or halfway through a shorter life); one lock makes
the cache safe to share between threads, and `token_async` between tasks.

Shared by the publisher and partner SDKs and the CLI: it imports nothing of ours, only authlib
(the request's client authentication, the assertion), httpx and cryptography.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from authlib.common.urls import url_encode
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

REFRESH_MARGIN_SECONDS: Final = 60
ASSERTION_LIFETIME_SECONDS: Final = 60
TIMEOUT_SECONDS: Final = 30

# RFC 9864 deprecates the JOSE algorithm name "EdDSA" for "Ed25519"; identity providers (Keycloak
# 26.5 among them) know Ed25519 client assertions as "EdDSA" only (RFC 8037), so that is what we
# send, and joserfc's warning about it says nothing the caller can act on.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864", category=SecurityWarning)

PrivateKey = Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey


class TokenRequestError(RuntimeError):
    """The identity provider gave no token: unreachable, or it refused the client (a disabled
    or unknown client, a wrong secret or key, a scope it may not have)."""


def load_private_key(path: Path) -> PrivateKey:
    """A private key from a PEM file (PKCS#8: Ed25519, EC or RSA), or from a raw 32-byte
    Ed25519 key as the key folder keeps an organisation's (`<keys_dir>/<organisation>.ed25519`)."""
    material = Path(path).read_bytes()
    if len(material) == 32:
        return Ed25519PrivateKey.from_private_bytes(material)
    key = load_pem_private_key(material, password=None)
    if not isinstance(key, Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey):
        raise ValueError(f"{path}: not an Ed25519, EC or RSA private key")
    return key


def _signing(key: PrivateKey) -> tuple[OKPKey | ECKey | RSAKey, str]:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    if isinstance(key, Ed25519PrivateKey):
        return OKPKey.import_key(pem), "EdDSA"
    if isinstance(key, EllipticCurvePrivateKey):
        return ECKey.import_key(pem), "ES256"
    return RSAKey.import_key(pem), "PS256"


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float


class ClientCredentials:
    """A token source for one client of one issuer, for one scope; call it for a valid token."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        scope: str,
        client_secret: str | None = None,
        private_key: PrivateKey | None = None,
        key_id: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if (client_secret is None) == (private_key is None):
            raise ValueError("give a private key (private_key_jwt) or a client secret, not both")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.scope = scope
        self._secret = client_secret
        self._key = private_key
        self._key_id = key_id
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._token_endpoint: str | None = None

    @classmethod
    def with_private_key(
        cls, issuer: str, client_id: str, private_key: PrivateKey, *, scope: str, key_id: str | None = None
    ) -> ClientCredentials:
        return cls(issuer, client_id, scope=scope, private_key=private_key, key_id=key_id)

    @classmethod
    def with_secret(cls, issuer: str, client_id: str, client_secret: str, *, scope: str) -> ClientCredentials:
        return cls(issuer, client_id, scope=scope, client_secret=client_secret)

    def __call__(self) -> str:
        return self.token()

    def token(self) -> str:
        """A valid access token: the kept one, or a new one when it is about to expire.
        Blocking (HTTP); raises TokenRequestError."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._token.refresh_at:
                self._token = self._fetch()
            return self._token.value

    async def token_async(self) -> str:
        return await asyncio.to_thread(self.token)

    def _endpoint(self) -> str:
        if self._token_endpoint is None:
            document = self._request("GET", f"{self.issuer}/.well-known/openid-configuration")
            endpoint = document.get("token_endpoint")
            if not isinstance(endpoint, str):
                raise TokenRequestError(f"{self.issuer}: its discovery document names no token endpoint")
            self._token_endpoint = endpoint
        return self._token_endpoint

    def _auth(self, endpoint: str) -> ClientAuth:
        if self._key is not None:
            key, algorithm = _signing(self._key)
            # the key's RFC 7638 thumbprint unless told otherwise (devstack/realms.py registers it so)
            headers = {"kid": self._key_id or key.thumbprint()}
            now = int(time.time())
            method = PrivateKeyJWT(
                endpoint, claims={"exp": now + ASSERTION_LIFETIME_SECONDS}, headers=headers, alg=algorithm
            )
            return ClientAuth(self.client_id, key, method)
        return ClientAuth(self.client_id, self._secret, "client_secret_basic")

    def _fetch(self) -> _Token:
        endpoint = self._endpoint()
        body = url_encode([("grant_type", "client_credentials"), ("scope", self.scope)])
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        url, headers, body = self._auth(endpoint).prepare("POST", endpoint, headers, body)  # type: ignore[no-untyped-call]
        started = time.monotonic()
        answer = self._request("POST", url, headers=headers, content=body)
        token, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not isinstance(lifetime, int | float):
            raise TokenRequestError(f"{self.issuer}: the token response has no access_token or expires_in")
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        return _Token(token, started + lifetime - margin)

    def _request(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        try:
            response = httpx.request(method, url, timeout=self._timeout, **options)
        except httpx.HTTPError as unreachable:
            raise TokenRequestError(f"cannot reach {self.issuer}: {unreachable}") from unreachable
        try:
            document = response.json()
        except ValueError:
            document = {}
        if response.status_code != 200 or not isinstance(document, dict):
            code = document.get("error", "") if isinstance(document, dict) else ""
            detail = document.get("error_description", "") if isinstance(document, dict) else ""
            raise TokenRequestError(
                f"{self.issuer} refused client {self.client_id}: HTTP {response.status_code}"
                + (f" {code}" if code else "")
                + (f": {detail}" if detail else "")
            )
        return document
