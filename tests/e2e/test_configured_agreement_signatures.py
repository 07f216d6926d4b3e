"""The operator's configured agreements come into force only with every party's signature
(ADR 0010): signature files beside the agreement, signatures given over the API, or both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.kafka import KafkaAccess
from services.consent.agreements import signature_path
from shared.contracts.agreements import Agreement
from shared.contracts.crypto.approvals import sign_version
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.plumbing.policy import Role
from tests.conftest import fresh_prefix
from tests.e2e.agreements import sign_proposal
from tests.e2e.stack import CONFIG_DIR, Stack

VT = "veilig-thuis-amsterdam"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's configuration, copied: this module adds agreements to it."""
    copy = tmp_path_factory.mktemp("configuration") / "config"
    shutil.copytree(CONFIG_DIR, copy)
    return copy


@pytest.fixture(scope="module")
def stack(
    kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory, config_dir: Path
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    with Stack(
        kafka_access, fresh_prefix(), workdir, extra_env={"SC_CONFIG_DIR": str(config_dir)}
    ) as running:
        yield running


def configured(config_dir: Path, agreement_id: str) -> Agreement:
    """A new agreement file in the operator's configuration (Amsterdam provides, Veilig Thuis receives)."""
    agreement = Agreement.model_validate(
        {
            "id": agreement_id,
            "version": 1,
            "title": f"Convenant {agreement_id}",
            "legal_basis": {"law": "Wet maatschappelijke ondersteuning 2015", "article": "art. 5.2.6"},
            "providers": ["gm0363"],
            "recipients": [{"partner": VT, "fields": ["category", "severity"]}],
            "categories": ["woonoverlast"],
            "purposes": ["aanpak_woonoverlast"],
            "valid_from": "2026-01-01",
            "retention_days": 180,
        }
    )
    path = config_dir / "agreements" / f"{agreement_id}.yaml"
    path.write_text(yaml.safe_dump(agreement.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return agreement


def signature_file(
    stack: Stack, config_dir: Path, agreement: Agreement, party: str, key_of: str | None = None
) -> None:
    """`party`'s signature on the file, as `safety-chain agreements sign` writes it (made with
    `key_of`'s key instead, to forge one)."""
    signer = key_of or party
    ring = KeyRing(stack.keys_dir, generate_missing=False, scope=KeyScope.organisation(signer))
    path = signature_path(config_dir / "agreements" / "signatures", agreement, party)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sign_version(ring.ed25519_private(signer), agreement, party) + "\n", encoding="ascii")


def restart_consent(stack: Stack) -> None:
    """Consent seeds its configured agreements at start."""
    stack.services["consent"].stop()
    stack.restart("consent")


def consent_get(stack: Stack, path: str) -> httpx.Response:
    headers = stack.bearer("safety-chain", Role.PRIVACY_OFFICER)
    return httpx.get(f"{stack.url('consent')}{path}", headers=headers, timeout=30)


def proposal(stack: Stack, agreement_id: str) -> dict[str, Any]:
    response = consent_get(stack, f"/v1/agreements/{agreement_id}/proposal")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_configured_agreements_wait_for_every_partys_signature_from_files_or_the_api(
    stack: Stack, config_dir: Path
) -> None:
    # The operator configures three new agreements: Amsterdam signed the first as a file, the
    # second nobody signed yet, the third carries a file in Amsterdam's name made with
    # Veilig Thuis's key.
    by_file = configured(config_dir, "woonoverlast-a")
    by_api = configured(config_dir, "woonoverlast-b")
    forged = configured(config_dir, "woonoverlast-c")
    signature_file(stack, config_dir, by_file, "gm0363")
    signature_file(stack, config_dir, forged, "gm0363", key_of=VT)
    restart_consent(stack)

    # None is in force; each waits for exactly the parties whose valid signature it lacks.
    for agreement in (by_file, by_api, forged):
        assert consent_get(stack, f"/v1/agreements/{agreement.id}").status_code == 404
    assert proposal(stack, by_file.id)["awaiting"] == [VT]
    assert [s["signed_by"] for s in proposal(stack, by_file.id)["signatures"]] == ["gm0363/configuration"]
    assert proposal(stack, by_api.id)["awaiting"] == ["gm0363", VT]
    assert proposal(stack, forged.id)["awaiting"] == ["gm0363", VT]

    # Veilig Thuis signs the first over the API: with Amsterdam's file, it is in force.
    signed = sign_proposal(stack, VT, by_file.id, person="v.fg")
    assert signed.status_code == 200 and signed.json()["status"] == "approved", signed.text
    assert consent_get(stack, f"/v1/agreements/{by_file.id}").json()["version"] == 1

    # Amsterdam signs the second over the API; Veilig Thuis's signature arrives as a file, and
    # at the next start consent completes it.
    assert sign_proposal(stack, "gm0363", by_api.id, person="f.fg").json()["awaiting"] == [VT]
    signature_file(stack, config_dir, by_api, VT)
    restart_consent(stack)
    in_force = consent_get(stack, f"/v1/agreements/{by_api.id}/signatures")
    assert in_force.status_code == 200, in_force.text
    assert {s["statement"]["organisation"] for s in in_force.json()["signatures"]} == {"gm0363", VT}
    assert proposal(stack, forged.id)["awaiting"] == ["gm0363", VT]
