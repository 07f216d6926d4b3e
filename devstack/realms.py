"""Keycloak realms for development and tests, generated from config/organisations.yaml.

Every organisation that calls the APIs (a municipality, a partner, the platform) gets a realm of
its own, named by its id, so each has its own issuer `<keycloak>/realms/<id>`, as each
municipality would have its own identity provider. In each realm:

- realm roles: the `Role` values of shared/plumbing/policy.py;
- client scopes: `safety-chain` (default: the `organisation` claim, hardcoded to the realm's
  organisation, and the realm roles as a flat `roles` list), `basic` (`sub`), `profile`
  (`preferred_username`, names), `email`, and the optional `signals`, `consent` and `audit`,
  each adding its service to `aud`: a client asks `scope=signals` for a token for signals;
- the system client `<id>-system` (municipality: role publisher, partner: recipient), client
  credentials only, authenticated with `private_key_jwt` signed by the organisation's Ed25519
  key (alg EdDSA; its public key from the key folder), and in development its twin
  `<id>-system-secret`, authenticated with a client secret;
- `safety-chain-console`, the audit console's sign-in: confidential (client secret),
  authorization code flow only, PKCE S256 required, audience `audit` by default, redirect
  `<origin>/console/sign-in/callback` for every console origin given;
- people: a privacy officer in every realm, and at a municipality an agreement administrator
  and someone who handles citizens' requests; generated passwords.

Every access token carries what shared/plumbing/credentials.py verifies: header typ `at+jwt`
(RFC 9068, a client attribute), `client_id` (a mapper per client: Keycloak itself names the
client in `azp`), `organisation`, `roles`, and lives `ACCESS_TOKEN_LIFESPAN` seconds.

`realm()` is a pure function of the organisation, its people, its secrets and its public key;
`generate()` makes the secrets (files under the output folder, never in the repository) and
writes the realm files Keycloak imports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Organisation, OrganisationKind, RegistryFile
from shared.contracts.yamlload import safe_load
from shared.plumbing.credentials import CALLER_KINDS
from shared.plumbing.policy import ROLE_DESCRIPTIONS, Role

ACCESS_TOKEN_LIFESPAN: Final = 300
"""Seconds; the verifier refuses tokens that live longer than an hour."""
CONSOLE_CLIENT: Final = "safety-chain-console"
CONSOLE_CALLBACK: Final = "/console/sign-in/callback"
CONSOLE_SIGNED_OUT: Final = "/console/sign-in"
SERVICE_SCOPES: Final = ("signals", "consent", "audit")
ORGANISATION_CLAIM: Final = "organisation"
ROLES_CLAIM: Final = "roles"
SYSTEM_ROLES: Final[dict[OrganisationKind, tuple[Role, ...]]] = {
    OrganisationKind.MUNICIPALITY: (Role.PUBLISHER,),
    OrganisationKind.PARTNER: (Role.RECIPIENT,),
}
"""The roles of an organisation's system client, by kind; the platform has none."""


def system_client(organisation: str) -> str:
    """The client id of the organisation's system (private_key_jwt)."""
    return f"{organisation}-system"


def secret_client(organisation: str) -> str:
    """The client id of the same system authenticated with a client secret (development)."""
    return f"{organisation}-system-secret"


@dataclass(frozen=True)
class Person:
    username: str
    first_name: str
    last_name: str
    roles: tuple[Role, ...]

    @property
    def email(self) -> str:
        return f"{self.username}@example.nl"


_NAMES: Final = (
    ("Sanne", "de Vries"),
    ("Daan", "Bakker"),
    ("Fatima", "El Amrani"),
    ("Joost", "van den Berg"),
    ("Eline", "Jansen"),
    ("Mehmet", "Yilmaz"),
    ("Noor", "Visser"),
    ("Pieter", "de Boer"),
    ("Anouk", "Smit"),
    ("Ruben", "Mulder"),
    ("Lotte", "Meijer"),
    ("Bram", "de Groot"),
    ("Kim", "Bos"),
    ("Thijs", "Vos"),
    ("Femke", "Peters"),
    ("Sem", "Hendriks"),
    ("Iris", "van Dijk"),
    ("Jesse", "Dekker"),
)


def _username(first: str, last: str) -> str:
    return (first[0] + last.replace(" ", "")).lower()


def people(organisations: Sequence[Organisation]) -> dict[str, tuple[Person, ...]]:
    """A few people per calling organisation, with Dutch names, the same on every run: a privacy
    officer everywhere; at a municipality an agreement administrator and someone for citizens'
    requests (objection, consent, erasure)."""
    names = iter(_NAMES * 4)
    result: dict[str, tuple[Person, ...]] = {}
    for organisation in organisations:
        if organisation.kind not in CALLER_KINDS:
            continue
        roles: list[tuple[Role, ...]] = [(Role.PRIVACY_OFFICER,)]
        if organisation.kind is OrganisationKind.MUNICIPALITY:
            roles += [(Role.AGREEMENT_ADMINISTRATOR,), (Role.SUBJECT_RIGHTS,)]
        staff = []
        for person_roles in roles:
            first, last = next(names)
            staff.append(Person(_username(first, last), first, last, person_roles))
        result[organisation.id] = tuple(staff)
    return result


@dataclass(frozen=True)
class RealmSecrets:
    """What the realm needs that must not be in the repository."""

    console_secret: str
    system_secret: str
    passwords: dict[str, str]  # username → password


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ed25519_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The organisation's Ed25519 public key as a JWK (RFC 8037), for private_key_jwt; its key id
    is its RFC 7638 thumbprint, which the client computes from its private key alone."""
    x = _b64(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    thumbprint = _b64(hashlib.sha256(members.encode("utf-8")).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "use": "sig", "alg": "EdDSA"}


def _claim_mappers(organisation: str) -> list[dict[str, Any]]:
    return [
        {
            "name": ORGANISATION_CLAIM,
            "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {
                "claim.name": ORGANISATION_CLAIM,
                "claim.value": organisation,
                "jsonType.label": "String",
                "access.token.claim": "true",
                "id.token.claim": "true",
                "userinfo.token.claim": "true",
                "introspection.token.claim": "true",
            },
        },
        {
            "name": ROLES_CLAIM,
            "protocol": "openid-connect",
            "protocolMapper": "oidc-usermodel-realm-role-mapper",
            "config": {
                "claim.name": ROLES_CLAIM,
                "multivalued": "true",
                "jsonType.label": "String",
                "access.token.claim": "true",
                "id.token.claim": "true",
                "userinfo.token.claim": "true",
                "introspection.token.claim": "true",
            },
        },
    ]


def _mapper(name: str, mapper: str, claim: str, **config: str) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": mapper,
        "config": {
            "claim.name": claim,
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
            **config,
        },
    }


def _scope(name: str, mappers: list[dict[str, Any]], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "protocol": "openid-connect",
        "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
        "protocolMappers": mappers,
    }


def _client_scopes(organisation: str) -> list[dict[str, Any]]:
    audiences = [
        _scope(
            service,
            [
                {
                    "name": f"audience {service}",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": {
                        "included.custom.audience": service,
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                        "introspection.token.claim": "true",
                    },
                }
            ],
            f"an access token for the {service} service (aud {service})",
        )
        for service in SERVICE_SCOPES
    ]
    return [
        _scope("safety-chain", _claim_mappers(organisation), "the organisation and its roles"),
        _scope(
            "basic",
            [
                {
                    "name": "sub",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-sub-mapper",
                    "config": {"access.token.claim": "true", "introspection.token.claim": "true"},
                }
            ],
            "the subject",
        ),
        _scope(
            "profile",
            [
                _mapper(
                    "username",
                    "oidc-usermodel-property-mapper",
                    "preferred_username",
                    **{"user.attribute": "username"},
                ),
                _mapper(
                    "given name",
                    "oidc-usermodel-property-mapper",
                    "given_name",
                    **{"user.attribute": "firstName"},
                ),
                _mapper(
                    "family name",
                    "oidc-usermodel-property-mapper",
                    "family_name",
                    **{"user.attribute": "lastName"},
                ),
                {
                    "name": "full name",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-full-name-mapper",
                    "config": {
                        "access.token.claim": "false",
                        "id.token.claim": "true",
                        "userinfo.token.claim": "true",
                    },
                },
            ],
            "the person's name",
        ),
        _scope(
            "email",
            [_mapper("email", "oidc-usermodel-property-mapper", "email", **{"user.attribute": "email"})],
            "the person's e-mail address",
        ),
        *audiences,
    ]


def _full_name_in_access_token() -> dict[str, Any]:
    return {
        "name": "full name in the access token",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-full-name-mapper",
        "config": {"access.token.claim": "true", "id.token.claim": "false", "userinfo.token.claim": "false"},
    }


def _client_id_mapper(client_id: str) -> dict[str, Any]:
    """RFC 9068's `client_id` (Keycloak names the client in `azp` only)."""
    return _mapper("client_id", "oidc-hardcoded-claim-mapper", "client_id", **{"claim.value": client_id})


_TOKEN_ATTRIBUTES: Final = {
    "access.token.header.type.rfc9068": "true",
    "access.token.lifespan": str(ACCESS_TOKEN_LIFESPAN),
}
_DEFAULT_SCOPES: Final = ["safety-chain", "basic", "profile"]


def _system_client(client_id: str, authenticator: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientId": client_id,
        "name": "the organisation's system (client credentials)",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": True,
        "fullScopeAllowed": True,
        "defaultClientScopes": _DEFAULT_SCOPES,
        "optionalClientScopes": list(SERVICE_SCOPES),
        "protocolMappers": [_client_id_mapper(client_id)],
        **authenticator,
        "attributes": {**_TOKEN_ATTRIBUTES, **authenticator.get("attributes", {})},
    }


def _console_client(secret: str, console_origins: Iterable[str]) -> dict[str, Any]:
    origins = sorted(set(console_origins))
    return {
        "clientId": CONSOLE_CLIENT,
        "name": "safety-chain audit console",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": True,
        "fullScopeAllowed": True,
        "redirectUris": [origin + CONSOLE_CALLBACK for origin in origins],
        "defaultClientScopes": [*_DEFAULT_SCOPES, "email", "audit"],
        "optionalClientScopes": [scope for scope in SERVICE_SCOPES if scope != "audit"],
        # The person's name in the console's own access token (the console greets them by it),
        # not in the tokens that travel to the other services.
        "protocolMappers": [_client_id_mapper(CONSOLE_CLIENT), _full_name_in_access_token()],
        "attributes": {
            **_TOKEN_ATTRIBUTES,
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": "##".join(origin + CONSOLE_SIGNED_OUT + "*" for origin in origins),
        },
    }


_KEY_PROVIDERS: Final = [
    # ES256 signs the tokens; no RSA key is generated (each realm would cost seconds to import)
    {
        "name": "ecdsa-generated",
        "providerId": "ecdsa-generated",
        "config": {"priority": ["100"], "ecdsaEllipticCurveKey": ["P-256"]},
    },
    {
        "name": "hmac-generated-hs512",
        "providerId": "hmac-generated",
        "config": {"priority": ["100"], "algorithm": ["HS512"]},
    },
    {"name": "aes-generated", "providerId": "aes-generated", "config": {"priority": ["100"]}},
]


def realm(
    organisation: Organisation,
    staff: Sequence[Person],
    realm_secrets: RealmSecrets,
    system_key: dict[str, str],
    console_origins: Iterable[str],
) -> dict[str, Any]:
    """The realm of one calling organisation, as Keycloak imports it (a RealmRepresentation)."""
    org = organisation.id
    clients = [_console_client(realm_secrets.console_secret, console_origins)]
    users: list[dict[str, Any]] = []
    system_roles = SYSTEM_ROLES.get(organisation.kind)
    if system_roles is not None:
        jwks = json.dumps({"keys": [system_key]}, sort_keys=True)
        clients += [
            _system_client(
                system_client(org),
                {
                    "clientAuthenticatorType": "client-jwt",
                    "attributes": {
                        "token.endpoint.auth.signing.alg": "EdDSA",
                        "use.jwks.string": "true",
                        "jwks.string": jwks,
                    },
                },
            ),
            _system_client(
                secret_client(org),
                {"clientAuthenticatorType": "client-secret", "secret": realm_secrets.system_secret},
            ),
        ]
        users += [
            {
                "username": f"service-account-{client_id}",
                "enabled": True,
                "serviceAccountClientId": client_id,
                "realmRoles": [str(role) for role in system_roles],
            }
            for client_id in (system_client(org), secret_client(org))
        ]
    users += [
        {
            "username": person.username,
            "enabled": True,
            "firstName": person.first_name,
            "lastName": person.last_name,
            "email": person.email,
            "emailVerified": True,
            "credentials": [
                {"type": "password", "value": realm_secrets.passwords[person.username], "temporary": False}
            ],
            "realmRoles": [str(role) for role in person.roles],
        }
        for person in staff
    ]
    return {
        "realm": org,
        "displayName": organisation.name,
        "enabled": True,
        "sslRequired": "external",
        "accessTokenLifespan": ACCESS_TOKEN_LIFESPAN,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 36000,
        "registrationAllowed": False,
        "loginWithEmailAllowed": False,
        "internationalizationEnabled": True,
        "supportedLocales": ["nl", "en"],
        "defaultLocale": "nl",
        "roles": {
            "realm": [{"name": str(role), "description": ROLE_DESCRIPTIONS[role]} for role in Role],
        },
        "clientScopes": _client_scopes(org),
        "defaultDefaultClientScopes": _DEFAULT_SCOPES,
        "defaultSignatureAlgorithm": "ES256",
        "components": {"org.keycloak.keys.KeyProvider": _KEY_PROVIDERS},
        "defaultOptionalClientScopes": [*SERVICE_SCOPES, "email"],
        "clients": clients,
        "users": users,
    }


def issuer_entries(
    base_url: str, organisations: Iterable[str], console_secret_files: Mapping[str, Path] | None = None
) -> list[dict[str, Any]]:
    """The issuers.yaml entries that trust each organisation's realm for that organisation only;
    with `console_secret_files` (organisation -> the console client's secret file) each is also
    where the console signs that organisation's people in."""
    entries: list[dict[str, Any]] = []
    for org in organisations:
        entry: dict[str, Any] = {
            "issuer": f"{base_url}/realms/{org}",
            "jwks_uri": f"{base_url}/realms/{org}/protocol/openid-connect/certs",
            "organisations": [org],
            "organisation_claim": ORGANISATION_CLAIM,
        }
        if console_secret_files and org in console_secret_files:
            entry["sign_in"] = {
                "client_id": CONSOLE_CLIENT,
                "client_secret_file": str(console_secret_files[org]),
            }
        entries.append(entry)
    return entries


def calling_organisations(config_dir: Path) -> list[Organisation]:
    raw = safe_load((Path(config_dir) / "organisations.yaml").read_text(encoding="utf-8"))
    organisations = RegistryFile.model_validate(raw).organisations
    return [organisation for organisation in organisations if organisation.kind in CALLER_KINDS]


def _secret_file(path: Path) -> str:
    """The secret in `path`, made (URL-safe, 256 bits, mode 0600) when there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class GeneratedRealms:
    """Where `generate` wrote: `import_dir` (one `<org>-realm.json` per realm) and, per
    organisation, `secrets_dir/<org>/` with `<client id>.secret` and `<username>.password`."""

    import_dir: Path
    secrets_dir: Path
    organisations: tuple[str, ...]
    people: dict[str, tuple[Person, ...]]

    def client_secret(self, organisation: str, client_id: str) -> str:
        return (self.secrets_dir / organisation / f"{client_id}.secret").read_text(encoding="utf-8").strip()

    def client_secret_file(self, organisation: str, client_id: str) -> Path:
        return self.secrets_dir / organisation / f"{client_id}.secret"

    def password(self, organisation: str, username: str) -> str:
        return (self.secrets_dir / organisation / f"{username}.password").read_text(encoding="utf-8").strip()


def generate(
    config_dir: Path, keys_dir: Path, out_dir: Path, console_origins: Iterable[str]
) -> GeneratedRealms:
    """Realm files for every calling organisation into `out_dir/import`, with their secrets in
    `out_dir/secrets` (kept when they exist, so a restarted Keycloak keeps its passwords). The
    organisations' Ed25519 keys must be in `keys_dir` (devstack.keys.prepare_development_keys)."""
    organisations = calling_organisations(config_dir)
    staff = people(organisations)
    keys = KeyRing(keys_dir, generate_missing=False)
    import_dir, secrets_dir = out_dir / "import", out_dir / "secrets"
    import_dir.mkdir(parents=True, exist_ok=True)
    origins = list(console_origins)
    for organisation in organisations:
        org = organisation.id
        folder = secrets_dir / org
        realm_secrets = RealmSecrets(
            console_secret=_secret_file(folder / f"{CONSOLE_CLIENT}.secret"),
            system_secret=_secret_file(folder / f"{secret_client(org)}.secret"),
            passwords={p.username: _secret_file(folder / f"{p.username}.password") for p in staff[org]},
        )
        key = ed25519_jwk(keys.ed25519_public(org))
        document = realm(organisation, staff[org], realm_secrets, key, origins)
        path = import_dir / f"{org}-realm.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
    return GeneratedRealms(
        import_dir,
        secrets_dir,
        tuple(o.id for o in organisations),
        {o.id: staff[o.id] for o in organisations},
    )
