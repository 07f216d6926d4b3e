"""The Keycloak realms generated from config/organisations.yaml (devstack/realms.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from joserfc.jwk import OKPKey

from devstack.realms import (
    ACCESS_TOKEN_LIFESPAN,
    CONSOLE_CLIENT,
    RealmSecrets,
    calling_organisations,
    ed25519_jwk,
    issuer_entries,
    people,
    realm,
    secret_client,
    system_client,
)
from shared.contracts.registry import Organisation, OrganisationKind
from shared.plumbing.credentials import MAX_LIFETIME_SECONDS, Issuer, IssuersFile, SignIn
from shared.plumbing.policy import Role

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ORGANISATIONS = {organisation.id: organisation for organisation in calling_organisations(CONFIG_DIR)}
PEOPLE = people(list(ORGANISATIONS.values()))
PRIVATE_KEY = Ed25519PrivateKey.generate()
KEY = ed25519_jwk(PRIVATE_KEY.public_key())


def _realm(org: str, origins: tuple[str, ...] = ("http://127.0.0.1",)) -> dict[str, Any]:
    staff = PEOPLE[org]
    secrets = RealmSecrets("console-secret", "system-secret", {p.username: f"pw-{p.username}" for p in staff})
    return realm(ORGANISATIONS[org], staff, secrets, KEY, origins)


def _client(document: dict[str, Any], client_id: str) -> dict[str, Any]:
    (client,) = [c for c in document["clients"] if c["clientId"] == client_id]
    return dict(client)


def _mappers(document: dict[str, Any], scope: str) -> list[dict[str, Any]]:
    (found,) = [s for s in document["clientScopes"] if s["name"] == scope]
    return list(found["protocolMappers"])


def test_every_organisation_that_calls_the_apis_gets_a_realm_and_no_service_does() -> None:
    # services are systems of the platform, not callers with an identity provider of their own
    kinds = {organisation.kind for organisation in ORGANISATIONS.values()}
    assert kinds == {OrganisationKind.MUNICIPALITY, OrganisationKind.PARTNER, OrganisationKind.PLATFORM}
    assert {"gm0363", "zvh-amsterdam", "safety-chain"} <= set(ORGANISATIONS)
    assert not {"signals", "consent", "audit"} & set(ORGANISATIONS)
    # and each realm is named by its organisation
    assert all(_realm(org)["realm"] == org for org in ORGANISATIONS)


def test_the_realm_roles_are_the_policys_roles() -> None:
    roles = {role["name"] for role in _realm("gm0363")["roles"]["realm"]}
    assert roles == {role.value for role in Role}


def test_a_service_scope_adds_that_service_and_only_it_to_the_audience() -> None:
    document = _realm("gm0363")
    for service in ("signals", "consent", "audit"):
        (mapper,) = _mappers(document, service)
        assert mapper["protocolMapper"] == "oidc-audience-mapper"
        assert mapper["config"]["included.custom.audience"] == service
    # optional for the system: it asks for the service it calls
    assert _client(document, system_client("gm0363"))["optionalClientScopes"] == [
        "signals",
        "consent",
        "audit",
    ]
    assert "signals" not in _client(document, system_client("gm0363"))["defaultClientScopes"]


def test_every_token_names_the_realms_organisation_and_its_roles_as_a_flat_list() -> None:
    mappers = {m["config"]["claim.name"]: m for m in _mappers(_realm("gm0599"), "safety-chain")}
    assert mappers["organisation"]["protocolMapper"] == "oidc-hardcoded-claim-mapper"
    assert mappers["organisation"]["config"]["claim.value"] == "gm0599"
    assert mappers["roles"]["protocolMapper"] == "oidc-usermodel-realm-role-mapper"
    assert mappers["roles"]["config"]["multivalued"] == "true"
    assert all(m["config"]["access.token.claim"] == "true" for m in mappers.values())
    assert "safety-chain" in _realm("gm0599")["defaultDefaultClientScopes"]


def test_every_client_issues_rfc_9068_tokens_with_its_client_id_and_a_short_life() -> None:
    document = _realm("gm0363")
    assert ACCESS_TOKEN_LIFESPAN <= MAX_LIFETIME_SECONDS
    assert document["accessTokenLifespan"] == ACCESS_TOKEN_LIFESPAN
    for client in document["clients"]:
        assert client["attributes"]["access.token.header.type.rfc9068"] == "true"
        assert int(client["attributes"]["access.token.lifespan"]) <= MAX_LIFETIME_SECONDS
        (mapper,) = [m for m in client["protocolMappers"] if m["config"].get("claim.name") == "client_id"]
        assert mapper["config"]["claim.value"] == client["clientId"]


@pytest.mark.parametrize(("org", "role"), [("gm0363", Role.PUBLISHER), ("zvh-amsterdam", Role.RECIPIENT)])
def test_the_system_client_has_its_kinds_role_and_proves_itself_with_the_organisations_key(
    org: str, role: Role
) -> None:
    document = _realm(org)
    client = _client(document, system_client(org))
    assert client["clientAuthenticatorType"] == "client-jwt"
    assert client["attributes"]["token.endpoint.auth.signing.alg"] == "EdDSA"
    assert json.loads(client["attributes"]["jwks.string"]) == {"keys": [KEY]}
    assert "secret" not in client
    assert (client["serviceAccountsEnabled"], client["standardFlowEnabled"]) == (True, False)
    assert not client["directAccessGrantsEnabled"]
    # its development twin uses the client secret it was given
    twin = _client(document, secret_client(org))
    assert (twin["clientAuthenticatorType"], twin["secret"]) == ("client-secret", "system-secret")
    accounts = {
        u["serviceAccountClientId"]: u["realmRoles"]
        for u in document["users"]
        if "serviceAccountClientId" in u
    }
    assert accounts == {system_client(org): [role.value], secret_client(org): [role.value]}


def test_the_platform_has_no_system_client() -> None:
    assert [c["clientId"] for c in _realm("safety-chain")["clients"]] == [CONSOLE_CLIENT]


def test_the_console_signs_people_in_with_the_code_flow_and_pkce_only() -> None:
    console = _client(_realm("gm0363", ("http://127.0.0.1", "https://console.example.nl")), CONSOLE_CLIENT)
    assert (console["publicClient"], console["clientAuthenticatorType"]) == (False, "client-secret")
    assert console["secret"] == "console-secret"
    assert console["standardFlowEnabled"]
    assert not (console["implicitFlowEnabled"] or console["directAccessGrantsEnabled"])
    assert not console["serviceAccountsEnabled"]
    assert console["attributes"]["pkce.code.challenge.method"] == "S256"
    assert "audit" in console["defaultClientScopes"]
    # a loopback redirect without a port: Keycloak accepts any port there (RFC 8252 section 7.3)
    assert console["redirectUris"] == [
        "http://127.0.0.1/console/sign-in/callback",
        "https://console.example.nl/console/sign-in/callback",
    ]
    assert console["attributes"]["post.logout.redirect.uris"].split("##") == [
        "http://127.0.0.1/console/sign-in*",
        "https://console.example.nl/console/sign-in*",
    ]


def test_every_realm_has_a_privacy_officer_and_a_municipality_its_administrators() -> None:
    for org, organisation in ORGANISATIONS.items():
        roles = [person.roles for person in PEOPLE[org]]
        assert (Role.PRIVACY_OFFICER,) in roles
        if organisation.kind is OrganisationKind.MUNICIPALITY:
            assert (Role.AGREEMENT_ADMINISTRATOR,) in roles
            assert (Role.SUBJECT_RIGHTS,) in roles
    # with names, not role names; with the password they were given
    document = _realm("gm0363")
    officer = next(u for u in document["users"] if u.get("realmRoles") == ["privacy-officer"])
    assert officer["firstName"] and officer["lastName"] and officer["emailVerified"]
    assert officer["credentials"] == [
        {"type": "password", "value": f"pw-{officer['username']}", "temporary": False}
    ]


def test_the_generated_issuers_are_valid_entries_each_speaking_for_its_own_organisation() -> None:
    entries = issuer_entries("http://127.0.0.1:8080", ["gm0363", "zvh-amsterdam"])
    issuers = IssuersFile.model_validate({"issuers": entries}).issuers
    assert issuers[0] == Issuer(
        issuer="http://127.0.0.1:8080/realms/gm0363",
        jwks_uri="http://127.0.0.1:8080/realms/gm0363/protocol/openid-connect/certs",
        organisations=["gm0363"],
        organisation_claim="organisation",
    )
    assert [issuer.speaks_for("gm0363") for issuer in issuers] == [True, False]
    assert issuers[0].sign_in is None


def test_with_the_console_secrets_each_issuer_is_where_its_people_sign_in(tmp_path: Path) -> None:
    secret = tmp_path / "console.secret"
    entries = issuer_entries("http://127.0.0.1:8080", ["gm0363", "zvh-amsterdam"], {"gm0363": secret})
    issuers = IssuersFile.model_validate({"issuers": entries}).issuers
    assert issuers[0].sign_in == SignIn(client_id=CONSOLE_CLIENT, client_secret_file=secret)
    assert issuers[0].discovery_url == "http://127.0.0.1:8080/realms/gm0363/.well-known/openid-configuration"
    assert issuers[1].sign_in is None  # no secret given: no sign-in there


def test_an_organisation_of_a_kind_without_a_system_role_gets_no_system_client() -> None:
    platform = Organisation(id="beheer", kind=OrganisationKind.PLATFORM, name="B", oin="9" * 20)
    document = realm(platform, (), RealmSecrets("c", "s", {}), KEY, ("http://127.0.0.1",))
    assert [c["clientId"] for c in document["clients"]] == [CONSOLE_CLIENT]
    assert document["users"] == []


def test_the_system_keys_id_is_the_thumbprint_the_client_computes_from_its_private_key() -> None:
    assert (
        KEY["kid"]
        == OKPKey.import_key(
            PRIVATE_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        ).thumbprint()
    )


def test_only_the_consoles_access_tokens_carry_the_persons_name() -> None:
    clients = {c["clientId"]: c for c in _realm("gm0599")["clients"]}
    named = {
        client_id
        for client_id, client in clients.items()
        for m in client.get("protocolMappers", [])
        if m["protocolMapper"] == "oidc-full-name-mapper" and m["config"]["access.token.claim"] == "true"
    }
    assert named == {CONSOLE_CLIENT}
