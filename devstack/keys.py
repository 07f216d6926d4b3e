"""Development key ceremony: every organisation's key pairs, made before any service starts.

    python -m devstack.keys                       # into SC_KEYS_DIR (default .local/keys)
    python -m devstack.keys --export-to /export   # and one folder per service (docker compose)

Services hold only their own private keys and find everyone else's public key in
organisations.yaml or, in development, in `<keys_dir>/public/`. So the public files must exist
before the services start: `make run`, the e2e stack, in-process tests and the CLI's development
paths call `prepare_development_keys` first. Production never runs this: its keys come from the
organisations themselves (Secrets, and public keys in organisations.yaml).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from shared.contracts.agreements import Agreement
from shared.contracts.crypto.approvals import ApprovalSignatureError, sign_version, unverified_statement
from shared.contracts.crypto.keys import (
    PUBLIC_DIR,
    SERVICE_KEYS,
    KeyRing,
    KeyScope,
    generate_development_keys,
)
from shared.contracts.registry import RegistryFile
from shared.contracts.yamlload import safe_load
from shared.plumbing.acls import Deployment
from shared.plumbing.credentials import DEVELOPMENT_ISSUER_KEY, DevelopmentIssuer
from shared.plumbing.kafka_credentials import KAFKA_CREDENTIALS_FOLDER, ensure_passwords, password_path

DEV_ISSUER: Final = DEVELOPMENT_ISSUER_KEY
"""The development token issuer: it signs access tokens, so it has an Ed25519 pair only."""


def organisation_ids(config_dir: Path) -> list[str]:
    raw = safe_load((Path(config_dir) / "organisations.yaml").read_text(encoding="utf-8"))
    return [organisation.id for organisation in RegistryFile.model_validate(raw).organisations]


def prepare_development_keys(keys_dir: Path, config_dir: Path) -> None:
    """Key pairs (and public files) of every organisation in the registry and of the
    development token issuer, and a Kafka password for every principal of the registry (in
    `<keys_dir>/kafka`, where the local broker and every client find them), where missing.
    Idempotent; cheap when everything exists."""
    generate_development_keys(keys_dir, organisation_ids(config_dir))
    generate_development_keys(keys_dir, [DEV_ISSUER], algorithms=("ed25519",))
    principals = [principal.user for principal in Deployment.from_registry(config_dir).principals]
    ensure_passwords(keys_dir / KAFKA_CREDENTIALS_FOLDER, principals)
    sign_configured_agreements(keys_dir, config_dir)


def sign_configured_agreements(keys_dir: Path, config_dir: Path) -> list[Path]:
    """Development only: every party of every configured agreement signs its content with its
    development key, into `<keys_dir>/agreement-signatures/<id>/v<version>/<party>.jws`, where
    consent finds them (ConsentSettings.agreement_signature_folders). In production each party
    signs for itself (`safety-chain agreements sign` or `approve`). Re-signs only what changed.
    Returns the files written."""
    from services.consent.agreements import load_agreements, signature_path
    from services.consent.settings import DEVELOPMENT_SIGNATURES

    written = []
    for agreement in load_agreements(Path(config_dir) / "agreements"):
        for party in sorted(agreement.parties):
            path = signature_path(keys_dir / DEVELOPMENT_SIGNATURES, agreement, party)
            if path.is_file() and _signs(path, agreement):
                continue
            ring = KeyRing(keys_dir, generate_missing=False, scope=KeyScope.organisation(party))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(
                sign_version(ring.ed25519_private(party), agreement, party) + "\n", encoding="ascii"
            )
            written.append(path)
    return written


def _signs(path: Path, agreement: Agreement) -> bool:
    try:
        statement = unverified_statement(path.read_text(encoding="ascii").strip())
    except ApprovalSignatureError:
        return False
    return statement.contract_content_hash == agreement.content_hash


def development_issuer(keys_dir: Path) -> DevelopmentIssuer:
    """The development token issuer, from a key folder the ceremony prepared (its own key only)."""
    return DevelopmentIssuer.from_keys(keys_dir)


def export_service_keys(keys_dir: Path, service: str, target: Path) -> list[str]:
    """Copy one service's own private files (those that exist), its own Kafka password and
    every public file into `target`: the keys folder that service alone mounts. Returns the
    private files copied."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    copied = []
    for name in sorted(SERVICE_KEYS[service].files):
        source = keys_dir / name
        if source.exists():
            _replace(source, target / name, 0o600)
            copied.append(name)
    password = password_path(keys_dir / KAFKA_CREDENTIALS_FOLDER, service)
    if password.exists():
        (target / KAFKA_CREDENTIALS_FOLDER).mkdir(exist_ok=True, mode=0o700)
        _replace(password, password_path(target / KAFKA_CREDENTIALS_FOLDER, service), 0o600)
        copied.append(f"{KAFKA_CREDENTIALS_FOLDER}/{password.name}")
    signatures = keys_dir / "agreement-signatures"
    if service == "consent" and signatures.is_dir():  # what consent seeds its agreements with
        shutil.copytree(signatures, target / signatures.name, dirs_exist_ok=True)
        copied.append(f"{signatures.name}/")
    public = target / PUBLIC_DIR
    public.mkdir(exist_ok=True, mode=0o755)
    for source in sorted((keys_dir / PUBLIC_DIR).glob("*.pub")):
        _replace(source, public / source.name, 0o644)
    return copied


def _replace(source: Path, target: Path, mode: int) -> None:
    draft = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle, source.open("rb") as original:
        shutil.copyfileobj(original, handle)
    draft.replace(target)


def main(argv: Sequence[str] | None = None) -> int:
    from shared.plumbing.settings import CommonSettings, Environment

    # Development keys are for development: unless told otherwise (unset means production).
    settings = CommonSettings(environment=Environment(os.environ.get("SC_ENVIRONMENT", "development")))
    parser = argparse.ArgumentParser(prog="python -m devstack.keys", description="Development key pairs.")
    parser.add_argument("--keys-dir", type=Path, default=settings.keys_dir)
    parser.add_argument("--config-dir", type=Path, default=settings.config_dir)
    parser.add_argument("--export-to", type=Path, help="write <dir>/<service>/ for each service")
    args = parser.parse_args(argv)
    if not settings.generate_missing_keys:
        print("refused: development keys are never generated in production", file=sys.stderr)
        return 2
    prepare_development_keys(args.keys_dir, args.config_dir)
    print(f"development keys: {args.keys_dir}")
    if args.export_to:
        for service in SERVICE_KEYS:
            copied = export_service_keys(args.keys_dir, service, args.export_to / service)
            print(f"{service}: {', '.join(copied) or 'no private key'} and the public keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
