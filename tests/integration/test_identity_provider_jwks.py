"""An organisation's own identity provider: the verifier fetches its JWKS over HTTP, here from a
real server on 127.0.0.1, and trusts it only for the organisations it is configured for.

Integration, not unit: these tests serve and fetch over a socket. The token rules around them are
in tests/unit/test_credentials.py, whose helpers they use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest
from jwt.algorithms import OKPAlgorithm

from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.credentials import InvalidCredentialError, Issuer
from shared.plumbing.settings import PROJECT_ROOT
from tests.unit.test_credentials import OTHER_KEY, claims, signed, verifier


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    keys = KeyRing(tmp_path_factory.mktemp("keys"), generate_missing=False)
    return Registry.load(PROJECT_ROOT / "config", keys)


class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jwks_uri() -> Iterator[str]:
    """An organisation's identity provider: its JWKS served over HTTP on 127.0.0.1."""
    jwk = json.loads(OKPAlgorithm.to_jwk(OTHER_KEY.public_key()))
    _Jwks.body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "EdDSA"}]}).encode()
    server = HTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/certs"
    server.shutdown()


def test_an_organisations_identity_provider_speaks_only_for_its_own(
    registry: Registry, tmp_path: Path, jwks_uri: str
) -> None:
    amsterdam = Issuer(issuer="https://login.amsterdam.example", jwks_uri=jwks_uri, organisations=["gm0363"])
    check = verifier(registry, tmp_path, [amsterdam])

    def token(sub: str) -> str:
        payload = claims(iss=amsterdam.issuer, sub=sub)
        return jwt.encode(payload, OTHER_KEY, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "k1"})

    assert check.verify(token("gm0363")).organisation == "gm0363"
    with pytest.raises(InvalidCredentialError, match="does not speak for gm0599"):
        check.verify(token("gm0599"))
    # and the development issuer is not trusted where it is not configured
    with pytest.raises(InvalidCredentialError, match="unknown issuer"):
        check.verify(signed(claims()))


def test_an_issuer_may_name_the_organisation_in_its_own_claim(
    registry: Registry, tmp_path: Path, jwks_uri: str
) -> None:
    """Keycloak keeps the user's id in `sub`; a hardcoded `organisation` claim names the municipality."""
    keycloak = Issuer(
        issuer="https://login.amsterdam.example",
        jwks_uri=jwks_uri,
        organisations=["gm0363"],
        organisation_claim="organisation",
    )
    payload = claims(iss=keycloak.issuer, sub="f2a1c3d4-user-id", organisation="gm0363")
    token = jwt.encode(payload, OTHER_KEY, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "k1"})
    principal = verifier(registry, tmp_path, [keycloak]).verify(token)
    assert principal.organisation == "gm0363" and principal.actor == "gm0363/f.fg"
    without = jwt.encode(
        claims(iss=keycloak.issuer), OTHER_KEY, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "k1"}
    )
    with pytest.raises(InvalidCredentialError, match="does not speak for"):
        verifier(registry, tmp_path, [keycloak]).verify(without)
