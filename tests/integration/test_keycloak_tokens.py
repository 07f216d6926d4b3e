"""The services' token verifier meets a real identity provider: Keycloak, one realm per
organisation, generated from config/organisations.yaml (devstack/realms.py, the `keycloak`
fixture). The token rules themselves are in tests/unit/test_credentials.py."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.realms import CONSOLE_CALLBACK, CONSOLE_CLIENT, secret_client, system_client
from shared.client_credentials import ClientCredentials, TokenRequestError
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.credentials import InvalidCredentialError, RevocationList, TokenVerifier, load_issuers
from shared.plumbing.policy import Role
from tests.conftest import Keycloak
from tests.polling import eventually


def verifier(keycloak: Keycloak, audience: str, tmp_path: Path) -> TokenVerifier:
    """The verifier a service builds from the configuration that trusts the realms."""
    registry = Registry.load(keycloak.config_dir, KeyRing(keycloak.keys_dir, generate_missing=False))
    return TokenVerifier(
        load_issuers(keycloak.config_dir, allow_development=False),
        registry,
        audience,
        RevocationList(tmp_path / "revoked.txt"),
    )


def client_secret_token(
    keycloak: Keycloak, realm: str, client_id: str, secret: str, scope: str
) -> httpx.Response:
    return httpx.post(
        f"{keycloak.issuer(realm)}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
        timeout=30,
    )


def test_a_client_secret_token_for_signals_names_the_organisation_and_its_role(
    keycloak: Keycloak, tmp_path: Path
) -> None:
    # the development twin of Amsterdam's system asks its own realm for a token for signals
    client = secret_client("gm0363")
    response = client_secret_token(
        keycloak, "gm0363", client, keycloak.realms.client_secret("gm0363", client), "signals"
    )
    assert response.status_code == 200, response.text
    # signals accepts it: Amsterdam, as a publisher, acting as its system's service account
    principal = verifier(keycloak, "signals", tmp_path).verify(response.json()["access_token"])
    assert (principal.organisation, principal.roles) == ("gm0363", frozenset({Role.PUBLISHER}))
    assert principal.actor == f"gm0363/service-account-{client}"
    # a token for audit is not one for signals
    for_audit = client_secret_token(
        keycloak, "gm0363", client, keycloak.realms.client_secret("gm0363", client), "audit"
    )
    with pytest.raises(InvalidCredentialError, match="not meant for signals"):
        verifier(keycloak, "signals", tmp_path).verify(for_audit.json()["access_token"])


def test_a_wrong_client_secret_gets_no_token(keycloak: Keycloak) -> None:
    response = client_secret_token(keycloak, "gm0363", secret_client("gm0363"), "not-the-secret", "signals")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized_client"


def test_amsterdams_provider_cannot_speak_for_rotterdam(keycloak: Keycloak, tmp_path: Path) -> None:
    # an administrator at Amsterdam adds a client whose tokens claim to be Rotterdam's
    keycloak.add_impostor("gm0363", "impostor", claims_to_be="gm0599", secret="impostor-secret")
    try:
        response = client_secret_token(keycloak, "gm0363", "impostor", "impostor-secret", "signals")
        assert response.status_code == 200, response.text
        # a well-signed token of Amsterdam's realm, which says gm0599: refused
        with pytest.raises(InvalidCredentialError, match=r"/realms/gm0363 does not speak for gm0599"):
            verifier(keycloak, "signals", tmp_path).verify(response.json()["access_token"])
    finally:
        keycloak.admin.delete_client("gm0363", "impostor")


def test_a_disabled_client_gets_no_more_tokens(keycloak: Keycloak) -> None:
    client = secret_client("gm0599")
    secret = keycloak.realms.client_secret("gm0599", client)
    assert client_secret_token(keycloak, "gm0599", client, secret, "signals").status_code == 200
    # Rotterdam's administrator disables its system's client
    keycloak.admin.set_client_enabled("gm0599", client, False)
    try:
        refused = client_secret_token(keycloak, "gm0599", client, secret, "signals")
        assert refused.status_code in (400, 401), refused.text
        assert refused.json()["error"] in ("invalid_client", "unauthorized_client")
    finally:
        keycloak.admin.set_client_enabled("gm0599", client, True)
    assert client_secret_token(keycloak, "gm0599", client, secret, "signals").status_code == 200


def sign_in(keycloak: Keycloak, realm: str, username: str, password: str) -> httpx.Response:
    """A person signs in to the console through Keycloak's own login page (authorization code
    flow with PKCE, as a browser would, without one): the token response, or the page that
    refused them."""
    verifier_text = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier_text.encode()).digest()).rstrip(b"=").decode()
    )
    redirect_uri = f"http://127.0.0.1:8765{CONSOLE_CALLBACK}"  # a console on any loopback port
    endpoints = f"{keycloak.issuer(realm)}/protocol/openid-connect"
    with httpx.Client(timeout=30) as browser:
        page = browser.get(
            f"{endpoints}/auth",
            params={
                "client_id": CONSOLE_CLIENT,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": redirect_uri,
                "state": "s1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        assert action is not None, page.text
        # Keycloak's cookies are Secure; a browser sends them to 127.0.0.1 (a secure context),
        # Python's cookie jar does not over http: sent by hand
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in browser.cookies.jar)
        answer = browser.post(
            html.unescape(action.group(1)),
            data={"username": username, "password": password, "credentialId": ""},
            headers={"cookie": cookies},
        )
        if answer.status_code != 302:
            return answer
        location = urlsplit(answer.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        query = parse_qs(location.query)
        assert query["state"] == ["s1"]
        return browser.post(
            f"{endpoints}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier_text,
            },
            auth=(CONSOLE_CLIENT, keycloak.realms.client_secret(realm, CONSOLE_CLIENT)),
        )


def test_a_privacy_officer_signs_in_and_a_disabled_one_cannot(keycloak: Keycloak, tmp_path: Path) -> None:
    (officer,) = [p for p in keycloak.realms.people["gm0518"] if p.roles == (Role.PRIVACY_OFFICER,)]
    password = keycloak.realms.password("gm0518", officer.username)
    # signed in through the login page: a token audit accepts, for The Hague's privacy officer
    tokens = sign_in(keycloak, "gm0518", officer.username, password)
    assert tokens.status_code == 200, tokens.text
    principal = verifier(keycloak, "audit", tmp_path).verify(tokens.json()["access_token"])
    assert (principal.organisation, principal.roles) == ("gm0518", frozenset({Role.PRIVACY_OFFICER}))
    assert principal.actor == f"gm0518/{officer.username}"
    # a wrong password signs no one in
    wrong = sign_in(keycloak, "gm0518", officer.username, "wrong")
    assert wrong.status_code == 200 and "Gebruikersnaam of wachtwoord ongeldig" in wrong.text
    # disabled in Keycloak: the right password no longer signs them in
    keycloak.admin.set_user_enabled("gm0518", officer.username, False)
    try:
        refused = sign_in(keycloak, "gm0518", officer.username, password)
        assert refused.status_code == 200 and "access_token" not in refused.text
        # (the realm speaks Dutch first: "account is blocked, contact the administrator")
        assert refused.status_code == 200 and "Account is geblokkeerd" in refused.text, refused.text
    finally:
        keycloak.admin.set_user_enabled("gm0518", officer.username, True)
    assert "access_token" in sign_in(keycloak, "gm0518", officer.username, password).json()


def test_a_system_shares_one_token_between_threads_and_renews_it_before_it_expires(
    keycloak: Keycloak,
) -> None:
    # a client whose tokens live four seconds: renewed after two
    keycloak.admin.create_client(
        "gm0599",
        {
            "clientId": "short-lived",
            "secret": "short-lived-secret",
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "optionalClientScopes": ["signals"],
            "attributes": {"access.token.lifespan": "4", "access.token.header.type.rfc9068": "true"},
        },
    )
    try:
        tokens = ClientCredentials.with_secret(
            keycloak.issuer("gm0599"), "short-lived", "short-lived-secret", scope="signals"
        )
        # eight threads at once: one token request, one token (each request gets its own jti)
        with ThreadPoolExecutor(8) as pool:
            first = set(pool.map(lambda _: tokens(), range(8)))
        assert len(first) == 1
        # renewed before it expires
        renewed = eventually(lambda: tokens() if tokens() not in first else None, what="a renewed token")
        claims = jwt.decode(renewed, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 4 and claims["aud"] == "signals"
    finally:
        keycloak.admin.delete_client("gm0599", "short-lived")


def test_a_private_key_jwt_signed_with_another_key_gets_no_token(keycloak: Keycloak) -> None:
    # Rotterdam's client id, with a key that is not Rotterdam's
    stranger = ClientCredentials.with_private_key(
        keycloak.issuer("gm0599"), system_client("gm0599"), Ed25519PrivateKey.generate(), scope="signals"
    )
    with pytest.raises(TokenRequestError, match="refused client gm0599-system"):
        stranger.token()
    # with Rotterdam's own key: a token
    own = KeyRing(keycloak.keys_dir, generate_missing=False).ed25519_private("gm0599")
    assert ClientCredentials.with_private_key(
        keycloak.issuer("gm0599"), system_client("gm0599"), own, scope="signals"
    ).token()
