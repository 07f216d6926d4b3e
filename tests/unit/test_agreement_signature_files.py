"""The parties' signatures on the configured agreements travel as files beside them (ADR 0010):
signed with `safety-chain agreements sign`, read by consent, shipped in the Kubernetes config."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from cli.main import app
from deploy.k8s.generate import CONFIG_COMPONENT_DIR, render
from devstack.keys import export_service_keys, prepare_development_keys, sign_configured_agreements
from services.consent.agreements import load_agreements, load_signatures, signature_path
from services.consent.approvals import accepted_by
from services.consent.settings import ConsentSettings
from shared.contracts.agreements import Agreement
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.contracts.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
DV = "huiselijk-geweld-amsterdam"


def dv_agreement(config_dir: Path) -> Agreement:
    return next(a for a in load_agreements(config_dir / "agreements") if a.id == DV)


def test_a_party_signs_a_configured_file_and_consent_reads_and_verifies_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    keys = tmp_path / "keys"
    ring = KeyRing(keys, generate_missing=True, scope=KeyScope.organisation("gm0363"))
    public = ring.ed25519_private("gm0363").public_key()
    settings = ConsentSettings(config_dir=config, keys_dir=tmp_path / "consent-keys")
    folder = settings.agreement_signature_folders[0]
    agreement_file = config / "agreements" / f"{DV}.yaml"

    result = CliRunner().invoke(
        app,
        [
            "agreements",
            "sign",
            str(agreement_file),
            "--as",
            "gm0363",
            "--into",
            str(folder),
            "--keys-dir",
            str(keys),
        ],
    )
    assert result.exit_code == 0, result.output
    agreement = dv_agreement(config)
    assert signature_path(folder, agreement, "gm0363").is_file()

    (signature,) = load_signatures(settings.agreement_signature_folders, agreement)
    assert signature.statement.organisation == "gm0363"
    assert accepted_by((signature,), agreement, lambda org: public) == {"gm0363"}
    # Another key (another organisation's, or a forger's) verifies nothing.
    stranger = Ed25519PrivateKey.generate().public_key()
    assert accepted_by((signature,), agreement, lambda org: stranger) == frozenset()


def test_a_non_party_cannot_make_a_signature_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("agreements", "sign", str(ROOT / "config" / "agreements" / f"{DV}.yaml"), "--as", "gm0599"),
            *("--into", str(tmp_path), "--keys-dir", str(tmp_path)),
        ],
    )
    assert result.exit_code == 1 and "not a party" in result.output
    assert list(tmp_path.rglob("*.jws")) == []


def test_signature_files_ship_in_the_kubernetes_config_where_consent_reads_them(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    agreement = dv_agreement(tmp_path / "config")
    signed = signature_path(tmp_path / "config" / "agreements" / "signatures", agreement, "gm0363")
    signed.parent.mkdir(parents=True)
    signed.write_text("header.payload.signature\n")

    files = render(tmp_path)
    relative = signed.relative_to(tmp_path / "config")
    assert files[CONFIG_COMPONENT_DIR / relative] == signed.read_bytes()
    patch = yaml.safe_load(files[CONFIG_COMPONENT_DIR / "config-volume.yaml"].decode().split("---", 1)[1])
    (volume,) = patch["spec"]["template"]["spec"]["volumes"]
    mounted = {item["path"] for item in volume["configMap"]["items"]}
    # Mounted at /app/config, the path consent reads: <config_dir>/agreements/signatures/...
    settings = ConsentSettings(config_dir=Path("/app/config"))
    assert Path("/app/config") / relative in {Path("/app/config") / path for path in mounted}
    assert (Path("/app/config") / relative).is_relative_to(settings.agreement_signature_folders[0])


def test_the_development_ceremony_signs_every_configured_agreement_for_every_party(tmp_path: Path) -> None:
    # What `make run`, docker compose and the tests start consent with: every party's
    # development key signed every configured version, and consent's exported folder has it.
    ceremony, exported = tmp_path / "ceremony", tmp_path / "consent"
    prepare_development_keys(ceremony, ROOT / "config")
    export_service_keys(ceremony, "consent", exported)
    registry = Registry.load(ROOT / "config", KeyRing(exported, generate_missing=False))
    folders = ConsentSettings(config_dir=ROOT / "config", keys_dir=exported).agreement_signature_folders
    agreements = load_agreements(ROOT / "config" / "agreements")
    assert agreements
    for agreement in agreements:
        signatures = load_signatures(folders, agreement)
        assert accepted_by(signatures, agreement, registry.ed25519_public) == agreement.parties, agreement.id
    # Signing again changes nothing: the files still sign the same content.
    assert sign_configured_agreements(ceremony, ROOT / "config") == []
