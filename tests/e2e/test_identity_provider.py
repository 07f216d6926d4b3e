"""Systems obtain their own access tokens from their organisation's identity provider (a real
Keycloak, one realm per organisation: the `keycloak` fixture) by client credentials, and the
services, configured to trust those realms, accept them for that organisation only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from devstack.kafka import KafkaAccess
from devstack.realms import secret_client, system_client
from partner import Witness
from publisher import ClientCredentials, HttpPublisher, TokenRequestError
from shared.client_credentials import load_private_key
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.registry import Registry
from tests.conftest import Keycloak, fresh_prefix
from tests.e2e.stack import Stack
from tests.e2e.test_audit_checkpoints import settled_checkpoint
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually


@pytest.fixture(scope="module")
def stack(
    kafka_access: KafkaAccess, keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The three services, trusting every organisation's realm for that organisation."""
    with Stack(
        kafka_access, fresh_prefix(), tmp_path_factory.mktemp("stack"), config_dir=keycloak.config_dir
    ) as running:
        yield running


def system_tokens(keycloak: Keycloak, organisation: str, scope: str = "signals") -> ClientCredentials:
    """What a municipal system configures: its issuer, its client id and its organisation's key."""
    key = load_private_key(keycloak.keys_dir / f"{organisation}.ed25519")
    return ClientCredentials.with_private_key(
        keycloak.issuer(organisation), system_client(organisation), key, scope=scope
    )


def test_a_municipal_system_submits_a_signal_with_its_own_client_credentials(
    stack: Stack, keycloak: Keycloak
) -> None:
    # Amsterdam's system proves itself with its organisation's Ed25519 key (private_key_jwt)
    tokens = system_tokens(keycloak, "gm0363")
    claims = jwt.decode(tokens(), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["client_id"]) == (
        keycloak.issuer("gm0363"),
        "signals",
        system_client("gm0363"),
    )
    # and submits a signal over HTTP: accepted
    answer = HttpPublisher(stack.url("signals"), tokens).submit(domestic_violence_signal())
    assert answer.accepted, answer.body
    # it reaches the audit log: accepted, then decided by consent
    signal_id = answer.body["signal_id"]
    records = eventually(
        lambda: [
            r for r in stack.audit_records(signal_id=signal_id) if r["event_type"].endswith("decided.v1")
        ],
        what="consent's decision on the signal in the audit log",
    )
    assert records
    assert any(r["event_type"].endswith("accepted.v1") for r in stack.audit_records(signal_id=signal_id))


def test_a_token_for_audit_is_refused_by_signals(stack: Stack, keycloak: Keycloak) -> None:
    answer = HttpPublisher(stack.url("signals"), system_tokens(keycloak, "gm0363", scope="audit")).submit(
        domestic_violence_signal()
    )
    assert answer.status == 401 and "not meant for signals" in json.dumps(answer.body), answer.body


def test_amsterdams_provider_cannot_submit_for_rotterdam(stack: Stack, keycloak: Keycloak) -> None:
    # an administrator at Amsterdam makes a client whose tokens say they speak for Rotterdam
    keycloak.add_impostor("gm0363", "rotterdam-impostor", claims_to_be="gm0599", secret="impostor-secret")
    try:
        tokens = ClientCredentials.with_secret(
            keycloak.issuer("gm0363"), "rotterdam-impostor", "impostor-secret", scope="signals"
        )
        answer = HttpPublisher(stack.url("signals"), tokens).submit(
            domestic_violence_signal(municipality="gm0599")
        )
        assert answer.status == 401, answer.body
        assert f"{keycloak.issuer('gm0363')} does not speak for gm0599" in json.dumps(answer.body)
    finally:
        keycloak.admin.delete_client("gm0363", "rotterdam-impostor")


def test_a_disabled_client_gets_no_token_and_the_sdk_says_why(stack: Stack, keycloak: Keycloak) -> None:
    # Rotterdam's administrator disables its system's client
    keycloak.admin.set_client_enabled("gm0599", system_client("gm0599"), False)
    try:
        publisher = HttpPublisher(stack.url("signals"), system_tokens(keycloak, "gm0599"))
        with pytest.raises(
            TokenRequestError, match=r"/realms/gm0599 refused client gm0599-system: HTTP 40\d"
        ):
            publisher.submit(domestic_violence_signal(municipality="gm0599"))
    finally:
        keycloak.admin.set_client_enabled("gm0599", system_client("gm0599"), True)
    # enabled again, the same configuration works
    answer = HttpPublisher(stack.url("signals"), system_tokens(keycloak, "gm0599")).submit(
        domestic_violence_signal(municipality="gm0599")
    )
    assert answer.status != 401, answer.body


def cli(stack: Stack, oauth: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value for key, value in {**os.environ, **stack.env}.items() if not key.startswith("SC_ACCESS")
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**env, **oauth},
        timeout=60,
        check=False,
    )


def test_the_cli_publishes_with_client_credentials(stack: Stack, keycloak: Keycloak, tmp_path: Path) -> None:
    signal_file = tmp_path / "signal.json"
    signal_file.write_text(json.dumps(domestic_violence_signal()), encoding="utf-8")
    # with the organisation's key: the raw Ed25519 key of the key folder
    with_key = {
        "SC_OAUTH_ISSUER": keycloak.issuer("gm0363"),
        "SC_OAUTH_CLIENT_ID": system_client("gm0363"),
        "SC_OAUTH_CLIENT_KEY_FILE": str(keycloak.keys_dir / "gm0363.ed25519"),
    }
    published = cli(stack, with_key, "signal", "publish", str(signal_file))
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["status"] == "accepted"
    # with a client secret (development): the token names the secret client
    with_secret = {
        "SC_OAUTH_ISSUER": keycloak.issuer("gm0363"),
        "SC_OAUTH_CLIENT_ID": secret_client("gm0363"),
        "SC_OAUTH_CLIENT_SECRET_FILE": str(
            keycloak.realms.client_secret_file("gm0363", secret_client("gm0363"))
        ),
    }
    fetched = cli(stack, with_secret, "token", "fetch", "--audience", "signals")
    assert fetched.returncode == 0, fetched.stderr
    assert jwt.decode(fetched.stdout.strip(), options={"verify_signature": False})[
        "client_id"
    ] == secret_client("gm0363")
    # a wrong secret: no token, and the CLI says who refused
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-secret", encoding="utf-8")
    refused = cli(
        stack,
        {**with_secret, "SC_OAUTH_CLIENT_SECRET_FILE": str(wrong)},
        "signal",
        "publish",
        str(signal_file),
    )
    assert refused.returncode == 2
    assert f"{keycloak.issuer('gm0363')} refused client {secret_client('gm0363')}" in refused.stderr


def test_a_partners_witness_cosigns_with_a_token_its_system_obtains_itself(
    stack: Stack, keycloak: Keycloak, tmp_path: Path
) -> None:
    zvh = "zvh-amsterdam"
    keys = KeyRing(stack.keys_dir, generate_missing=False, scope=KeyScope.organisation(zvh))
    audit_key = Registry.load(
        stack.config_dir, KeyRing(stack.keys_dir, generate_missing=False)
    ).ed25519_public("audit")
    # the partner's system asks its own realm for a token for audit (role recipient)
    witness = Witness(
        zvh,
        keys.ed25519_private(zvh),
        audit_key,
        tmp_path / "witness.json",
        stack.url("audit"),
        system_tokens(keycloak, zvh, scope="audit"),
    )
    # a checkpoint over at least one signal, then the witness reads and cosigns it
    assert stack.post_signal(domestic_violence_signal()).status_code == 202
    checkpoint = settled_checkpoint(stack, audit_key)
    done = witness.witness()
    assert done.size >= checkpoint.size
