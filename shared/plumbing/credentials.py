"""Who is calling: OAuth 2.0 access tokens as JWTs (RFC 9068), verified against their issuer.

An organisation's identity provider (Keycloak, following the NL GOV OAuth profile) issues the
token; `config/issuers.yaml` names each issuer we trust, where its JWKS is, and for which
organisations it may speak: Amsterdam's provider cannot mint a token for Rotterdam. A token
must be typed `at+jwt`, signed with an asymmetric algorithm, carry `iss`, `sub` (the
organisation, unless the issuer names it in another claim), `aud` (this service), `client_id`,
`iat`, a short `exp` and a `jti`, and not be on the revocation list. Roles come from the
`roles` claim; the actor (who exactly, for four eyes) from `preferred_username`, else
`client_id`.

For development the project carries its own issuer (`DevelopmentIssuer`, key `dev-issuer` in
the local key folder): `safety-chain token issue ORG --role ROLE` prints a token the local
services accept. Production refuses it.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.registry import OrganisationKind, Registry
from shared.contracts.yamlload import safe_load
from shared.plumbing.policy import Principal, Role

TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
ALGORITHMS: Final = ("EdDSA", "ES256", "ES384", "PS256", "RS256")  # asymmetric only, never "none"
REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
MAX_LIFETIME_SECONDS: Final = 3600
DEFAULT_LIFETIME_SECONDS: Final = 900
LEEWAY_SECONDS: Final = 30
MAX_NAME_LENGTH: Final = 100
"""A person's display name (the `name` claim) is cut to this many characters."""
DEVELOPMENT_ISSUER: Final = "safety-chain-development"
DEVELOPMENT_ISSUER_KEY: Final = "dev-issuer"
DEVELOPMENT_CLIENT: Final = "safety-chain-cli"
CALLER_KINDS: Final = frozenset(
    {OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER, OrganisationKind.PLATFORM}
)


class InvalidCredentialError(ValueError):
    """The token proves nothing; `reason` says why, without echoing the token."""


def acceptable_jwks_uri(uri: str) -> bool:
    """Whether keys may be fetched from `uri`: https to any host, or plain http only to this
    machine (a local identity provider in development). The URL is parsed, never matched as a
    string: `http://127.0.0.1.nip.io/` names a public host and `http://127.0.0.1@idp.example/`
    sends user information `127.0.0.1` to idp.example, and both are refused. No URL may carry
    user information (credentials in a URL end up in logs); the host of plain http must be a
    loopback IP literal or exactly `localhost`."""
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
        parts.port  # noqa: B018  # a malformed port raises here
    except ValueError:
        return False
    if not hostname or parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class SignIn(BaseModel):
    """The console's OpenID Connect client at an issuer: people of the organisations it speaks
    for sign in there (authorization code flow with PKCE, services/audit/console/providers.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, description="The console's client id at this provider.")
    client_secret_file: Path = Field(
        description="A file holding the client's secret (absolute, or relative to the config folder)."
    )
    scope: str = Field(
        default="openid audit",
        description="What the console asks for: `openid`, and the scope that adds audience `audit`.",
    )


class Issuer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1, description="The `iss` its tokens carry.")
    jwks_uri: str | None = Field(default=None, description="Where its public keys are (HTTPS).")
    development: bool = Field(default=False, description="The project's own issuer; refused in production.")
    organisations: list[str] | Literal["*"] = Field(description="For whom it may issue tokens.")
    organisation_claim: str = Field(
        default="sub",
        description=(
            "The claim that names the organisation: `sub` (RFC 9068), or e.g. `organisation` where"
            " the identity provider keeps the user's id in `sub` (a Keycloak hardcoded-claim mapper)."
        ),
    )
    roles_claim: str = Field(
        default="roles",
        description=(
            "The claim that lists the caller's roles: `roles` (a Keycloak realm-role mapper named"
            " so), or a dotted path into the token such as `realm_access.roles` (Keycloak's own)."
        ),
    )
    sign_in: SignIn | None = Field(
        default=None, description="Where the console signs in this issuer's people (OpenID Connect)."
    )

    @model_validator(mode="after")
    def _keys_known(self) -> Issuer:
        if not self.development and not self.jwks_uri:
            raise ValueError(f"issuer {self.issuer} needs a jwks_uri")
        if self.jwks_uri and not acceptable_jwks_uri(self.jwks_uri):
            raise ValueError(
                f"issuer {self.issuer}: its jwks_uri must be an https:// URL (http:// only to a"
                " loopback address: 127.0.0.0/8, ::1 or localhost), without user information"
            )
        if self.organisations == "*" and not self.development:
            raise ValueError(f"issuer {self.issuer}: only the development issuer speaks for everyone")
        if self.sign_in and (self.development or not acceptable_jwks_uri(self.issuer)):
            raise ValueError(
                f"issuer {self.issuer}: people sign in only at an OpenID provider whose issuer is an"
                " https:// URL (http:// only on a loopback address)"
            )
        return self

    @property
    def discovery_url(self) -> str:
        """Its OpenID Provider Configuration (OpenID Connect Discovery 1.0, section 4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def speaks_for(self, organisation: str) -> bool:
        return self.organisations == "*" or organisation in self.organisations


class IssuersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuers: list[Issuer]


def load_issuers(config_dir: Path, *, allow_development: bool) -> list[Issuer]:
    path = Path(config_dir) / "issuers.yaml"
    issuers = IssuersFile.model_validate(safe_load(path.read_text(encoding="utf-8"))).issuers
    return [
        _with_paths_from(Path(config_dir), issuer)
        for issuer in issuers
        if allow_development or not issuer.development
    ]


def _with_paths_from(config_dir: Path, issuer: Issuer) -> Issuer:
    """`issuer` with its sign-in secret file relative to the config folder made absolute."""
    if issuer.sign_in is None or issuer.sign_in.client_secret_file.is_absolute():
        return issuer
    secret_file = config_dir / issuer.sign_in.client_secret_file
    return issuer.model_copy(
        update={"sign_in": issuer.sign_in.model_copy(update={"client_secret_file": secret_file})}
    )


class RevocationList:
    """Token ids (`jti`) that are refused before they expire: one per line, `#` comments.
    Re-read whenever the file changes, so revoking needs no restart."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._revoked: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._current()

    def _current(self) -> frozenset[str]:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return frozenset()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                lines = self._path.read_text(encoding="utf-8").splitlines()
                self._revoked = frozenset(
                    line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()
                )
                self._stamp = stamp
            return self._revoked

    def revoke(self, token_id: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{token_id}\n")


class DevelopmentIssuer:
    """The project's own identity provider, for development and tests only."""

    def __init__(self, signing_key: Ed25519PrivateKey) -> None:
        self._key = signing_key

    @classmethod
    def from_keys(cls, keys_dir: Path) -> DevelopmentIssuer:
        """The issuer whose key the development key ceremony (devstack, `make run`) made in
        `keys_dir`; MissingKeyError when there is none."""
        scope = KeyScope(DEVELOPMENT_ISSUER_KEY, frozenset({"ed25519"}))
        return cls(
            KeyRing(keys_dir, generate_missing=False, scope=scope).ed25519_private(DEVELOPMENT_ISSUER_KEY)
        )

    def issue(
        self,
        organisation: str,
        roles: Iterable[Role | str],
        audience: str | Iterable[str],
        *,
        person: str | None = None,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
        now: float | None = None,
        token_id: str | None = None,
    ) -> str:
        issued_at = int(now if now is not None else time.time())
        role_names = sorted(str(role) for role in roles)
        claims: dict[str, Any] = {
            "iss": DEVELOPMENT_ISSUER,
            "sub": organisation,
            "aud": audience if isinstance(audience, str) else sorted(audience),
            "client_id": DEVELOPMENT_CLIENT,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + lifetime_seconds,
            "jti": token_id or str(uuid.uuid4()),
            "roles": role_names,
            "preferred_username": person or f"dev-{'-'.join(role_names) or 'caller'}",
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"typ": "at+jwt"})


def _claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted `path` (`realm_access.roles`), or None where there is none."""
    value: Any = claims
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


@dataclass
class TokenVerifier:
    """Turns a bearer token into a Principal, or raises InvalidCredentialError."""

    issuers: list[Issuer]
    registry: Registry
    audience: str
    revoked: RevocationList
    development_key: Ed25519PublicKey | None = None

    def __post_init__(self) -> None:
        self._by_name = {issuer.issuer: issuer for issuer in self.issuers}
        self._jwks = {
            issuer.issuer: jwt.PyJWKClient(issuer.jwks_uri, cache_keys=True, lifespan=300, timeout=5)
            for issuer in self.issuers
            if issuer.jwks_uri
        }

    def _key(self, issuer: Issuer, token: str) -> Any:
        if issuer.development:
            if self.development_key is None:
                raise InvalidCredentialError("the development issuer is not set up here")
            return self.development_key
        try:
            return self._jwks[issuer.issuer].get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as error:
            raise InvalidCredentialError(f"no key of {issuer.issuer} verifies the token") from error

    def verify(self, token: str) -> Principal:
        """Blocking (a remote JWKS may be fetched): call it off the event loop."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise InvalidCredentialError("not a JWT") from error
        if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            raise InvalidCredentialError("not an access token (typ must be at+jwt)")
        issuer = self._by_name.get(str(unverified.get("iss")))
        if issuer is None:
            raise InvalidCredentialError("unknown issuer")
        try:
            claims = jwt.decode(
                token,
                self._key(issuer, token),
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=issuer.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidCredentialError("expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidCredentialError(f"not meant for {self.audience}") from error
        except jwt.InvalidSignatureError as error:
            raise InvalidCredentialError("bad signature") from error
        except jwt.PyJWTError as error:
            raise InvalidCredentialError(f"invalid token: {type(error).__name__}") from error
        return self._principal(issuer, claims)

    def _principal(self, issuer: Issuer, claims: dict[str, Any]) -> Principal:
        if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_SECONDS:
            raise InvalidCredentialError(f"lives longer than {MAX_LIFETIME_SECONDS} s")
        token_id = str(claims["jti"])
        if token_id in self.revoked:
            raise InvalidCredentialError("revoked")
        organisation = str(claims.get(issuer.organisation_claim, ""))
        if not issuer.speaks_for(organisation):
            raise InvalidCredentialError(f"{issuer.issuer} does not speak for {organisation}")
        try:
            kind = self.registry.get(organisation).kind
        except LookupError as error:
            raise InvalidCredentialError("unknown organisation") from error
        if kind not in CALLER_KINDS:
            raise InvalidCredentialError(f"{kind} organisations do not call the APIs")
        raw_roles = _claim_at(claims, issuer.roles_claim)
        if raw_roles is None:
            raw_roles = []
        if not isinstance(raw_roles, list):
            raise InvalidCredentialError(f"{issuer.roles_claim} must be a list")
        known = {role.value for role in Role}
        roles = frozenset(Role(name) for name in raw_roles if name in known)
        person = claims.get("preferred_username") or claims["client_id"]
        name = claims.get("name")
        shown = " ".join(name.split())[:MAX_NAME_LENGTH] if isinstance(name, str) else ""
        return Principal(organisation, kind, roles, f"{organisation}/{person}", token_id, shown)
