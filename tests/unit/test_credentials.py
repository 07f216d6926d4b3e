"""Access tokens: what the verifier accepts, and every way a token is refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import OrganisationKind, Registry
from shared.plumbing.credentials import (
    DEVELOPMENT_ISSUER,
    DevelopmentIssuer,
    InvalidCredentialError,
    Issuer,
    RevocationList,
    TokenVerifier,
    acceptable_jwks_uri,
    load_issuers,
)
from shared.plumbing.policy import Role
from shared.plumbing.settings import PROJECT_ROOT

DEV_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
DEV = Issuer(issuer=DEVELOPMENT_ISSUER, development=True, organisations="*")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    keys = KeyRing(tmp_path_factory.mktemp("keys"), generate_missing=False)
    return Registry.load(PROJECT_ROOT / "config", keys)


def verifier(
    registry: Registry, tmp_path: Path, issuers: list[Issuer] | None = None, audience: str = "consent"
) -> TokenVerifier:
    return TokenVerifier(
        issuers or [DEV],
        registry,
        audience,
        RevocationList(tmp_path / "revoked.txt"),
        DEV_KEY.public_key(),
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": DEVELOPMENT_ISSUER,
        "sub": "gm0363",
        "aud": "consent",
        "client_id": "c",
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
        "roles": ["privacy-officer"],
        "preferred_username": "f.fg",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = DEV_KEY, alg: str = "EdDSA", typ: str = "at+jwt") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"typ": typ})


def test_a_development_token_names_organisation_roles_and_actor(registry: Registry, tmp_path: Path) -> None:
    token = DevelopmentIssuer(DEV_KEY).issue(
        "gm0363", [Role.AGREEMENT_ADMINISTRATOR], ["consent", "audit"], person="a.admin"
    )
    principal = verifier(registry, tmp_path).verify(token)
    assert principal.organisation == "gm0363" and principal.kind is OrganisationKind.MUNICIPALITY
    assert principal.roles == frozenset({Role.AGREEMENT_ADMINISTRATOR})
    assert principal.actor == "gm0363/a.admin" and principal.token_id
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


def test_a_persons_name_is_for_display_and_the_actor_stays_their_user_name(
    registry: Registry, tmp_path: Path
) -> None:
    principal = verifier(registry, tmp_path).verify(signed(claims(name="  Sanne   de Vries ")))
    assert (principal.name, principal.actor) == ("Sanne de Vries", "gm0363/f.fg")
    assert verifier(registry, tmp_path).verify(signed(claims(name=["not", "a name"]))).name == ""
    assert len(verifier(registry, tmp_path).verify(signed(claims(name="x" * 500))).name) == 100


def test_unknown_roles_are_ignored_not_granted(registry: Registry, tmp_path: Path) -> None:
    principal = verifier(registry, tmp_path).verify(signed(claims(roles=["root", "publisher"])))
    assert principal.roles == frozenset({Role.PUBLISHER})


def test_an_issuer_names_where_its_tokens_list_the_roles(registry: Registry, tmp_path: Path) -> None:
    keycloak_style = Issuer(
        issuer=DEVELOPMENT_ISSUER, development=True, organisations="*", roles_claim="realm_access.roles"
    )
    token = signed(claims(roles=None, realm_access={"roles": ["privacy-officer", "offline_access"]}))
    principal = verifier(registry, tmp_path, [keycloak_style]).verify(token)
    assert principal.roles == frozenset({Role.PRIVACY_OFFICER})
    # the other claim grants nothing to this issuer's tokens, nor this one to the default issuer's
    assert verifier(registry, tmp_path, [keycloak_style]).verify(signed(claims())).roles == frozenset()
    assert verifier(registry, tmp_path).verify(token).roles == frozenset()
    with pytest.raises(InvalidCredentialError, match=r"realm_access\.roles must be a list"):
        verifier(registry, tmp_path, [keycloak_style]).verify(signed(claims(realm_access={"roles": "x"})))


REFUSED: dict[str, tuple[str, str]] = {
    "expired": (signed(claims(iat=int(time.time()) - 900, exp=int(time.time()) - 120)), "expired"),
    "wrong audience": (signed(claims(aud="signals")), "not meant for consent"),
    "wrongly signed": (signed(claims(), key=OTHER_KEY), "bad signature"),
    "unknown issuer": (signed(claims(iss="https://evil.example")), "unknown issuer"),
    "not an access token": (signed(claims(), typ="JWT"), "not an access token"),
    "symmetric algorithm": (
        signed(claims(), key="a-shared-secret-of-32-bytes-long!", alg="HS256"),
        "invalid",
    ),
    "no algorithm": (signed(claims(), key=None, alg="none"), "invalid"),
    "no jti": (signed(claims(jti=None)), "invalid"),
    "no client_id": (signed(claims(client_id=None)), "invalid"),
    "lives too long": (signed(claims(exp=int(time.time()) + 7200)), "lives longer"),
    "unknown organisation": (signed(claims(sub="gm9999")), "unknown organisation"),
    "a service": (signed(claims(sub="consent")), "do not call"),
    "garbage": ("gm0363.0000", "not a JWT"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_tokens_say_why(registry: Registry, tmp_path: Path, case: str) -> None:
    token, reason = REFUSED[case]
    with pytest.raises(InvalidCredentialError, match=reason):
        verifier(registry, tmp_path).verify(token)


def test_a_revoked_token_is_refused_from_the_moment_the_list_changes(
    registry: Registry, tmp_path: Path
) -> None:
    check = verifier(registry, tmp_path)
    token = signed(claims(jti="to-revoke"))
    assert check.verify(token).token_id == "to-revoke"
    RevocationList(tmp_path / "revoked.txt").revoke("to-revoke")
    with pytest.raises(InvalidCredentialError, match="revoked"):
        check.verify(token)
    assert check.verify(signed(claims(jti="another"))).token_id == "another"


@pytest.mark.parametrize(
    ("uri", "accepted"),
    [
        ("https://login.amsterdam.example/realms/gm0363/protocol/openid-connect/certs", True),
        ("https://idp.example:8443/certs", True),
        ("http://127.0.0.1:8080/certs", True),
        ("http://127.0.0.53/certs", True),  # all of 127.0.0.0/8 is loopback
        ("http://[::1]:8080/certs", True),
        ("http://localhost:8080/certs", True),
        ("http://127.0.0.1.nip.io/certs", False),  # a public name that merely starts like loopback
        ("http://127.0.0.1@idp.example/certs", False),  # user information 127.0.0.1, host idp.example
        ("http://127.0.0.1:80@idp.example/certs", False),
        ("https://user:secret@idp.example/certs", False),  # credentials in a URL end up in logs
        ("http://localhost.idp.example/certs", False),
        ("http://idp.example/certs", False),
        ("http://10.0.0.1/certs", False),  # private is not loopback
        ("http://0x7f000001/certs", False),  # no IP literal in any other spelling
        ("http://127.1/certs", False),
        ("http://127.0.0.1:99999/certs", False),
        ("http://127.0.0.1\\@idp.example/certs", False),
        ("ftp://127.0.0.1/certs", False),
        ("file:///etc/keys.json", False),
        ("https:///certs", False),
        ("127.0.0.1/certs", False),
    ],
)
def test_a_jwks_uri_is_parsed_https_or_plain_http_to_a_loopback_literal_only(
    uri: str, accepted: bool
) -> None:
    assert acceptable_jwks_uri(uri) is accepted
    if accepted:
        assert Issuer(issuer="https://idp.example", jwks_uri=uri, organisations=["gm0363"]).jwks_uri == uri
    else:
        with pytest.raises(ValueError, match="jwks_uri must be an https:// URL"):
            Issuer(issuer="https://idp.example", jwks_uri=uri, organisations=["gm0363"])


def test_issuer_configuration_guards_itself(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jwks_uri"):
        Issuer(issuer="https://idp.example", organisations=["gm0363"])
    with pytest.raises(ValueError, match="https"):
        Issuer(issuer="https://idp.example", jwks_uri="http://idp.example/certs", organisations=["gm0363"])
    with pytest.raises(ValueError, match="only the development issuer"):
        Issuer(issuer="https://idp.example", jwks_uri="https://idp.example/certs", organisations="*")
    # production drops the development issuer from the project's configuration
    configured = load_issuers(PROJECT_ROOT / "config", allow_development=False)
    assert all(not issuer.development for issuer in configured)
    assert any(i.development for i in load_issuers(PROJECT_ROOT / "config", allow_development=True))
