"""Key material: public lookups never touch a private key, a service's ring holds only its own,
and the development key ceremony makes every pair (and public file) before the services start."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.keys import DEV_ISSUER, export_service_keys, organisation_ids, prepare_development_keys
from services.audit.app import create_app as create_audit
from services.audit.settings import AuditSettings
from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.signals.app import create_app as create_signals
from services.signals.settings import SignalsSettings
from shared.contracts.crypto.keys import (
    PUBLIC_DIR,
    SERVICE_KEYS,
    Algorithm,
    KeyRing,
    KeyScope,
    KeyScopeError,
    MissingKeyError,
    generate_development_keys,
    public_bytes,
)
from shared.contracts.registry import Registry

PRIVATE_SUFFIXES = (".ed25519", ".x25519", ".secret")


def private_files(keys_dir: Path) -> set[str]:
    return {path.name for path in keys_dir.iterdir() if path.is_file() and path.suffix in PRIVATE_SUFFIXES}


def public_files(keys_dir: Path) -> set[str]:
    return {path.name for path in (keys_dir / PUBLIC_DIR).iterdir()}


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory, project_config_dir: Path) -> Path:
    """A keys folder as `make run` prepares it."""
    keys_dir = tmp_path_factory.mktemp("ceremony") / "keys"
    prepare_development_keys(keys_dir, project_config_dir)
    return keys_dir


def test_the_ceremony_makes_every_organisations_pairs_and_the_issuers_signing_key(
    ceremony: Path, project_config_dir: Path
) -> None:
    owners = organisation_ids(project_config_dir)
    expected = {f"{owner}.{algorithm}" for owner in owners for algorithm in ("ed25519", "x25519")}
    assert private_files(ceremony) == expected | {f"{DEV_ISSUER}.ed25519"}
    assert public_files(ceremony) == {f"{name}.pub" for name in private_files(ceremony)}
    for name in private_files(ceremony):
        algorithm: Algorithm = "ed25519" if name.endswith("ed25519") else "x25519"
        public = (ceremony / PUBLIC_DIR / f"{name}.pub").read_bytes()
        assert public == public_bytes(algorithm, (ceremony / name).read_bytes())
        assert stat.S_IMODE((ceremony / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(ceremony.stat().st_mode) == 0o700


def test_the_ceremony_is_idempotent_and_completes_a_missing_public_file(
    tmp_path: Path, project_config_dir: Path
) -> None:
    prepare_development_keys(tmp_path, project_config_dir)
    before = {path.name: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    (tmp_path / PUBLIC_DIR / "consent.x25519.pub").unlink()
    prepare_development_keys(tmp_path, project_config_dir)
    after = {path.name: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


def test_a_public_lookup_works_with_only_public_files(ceremony: Path, tmp_path: Path) -> None:
    public_only = tmp_path / "keys"
    shutil.copytree(ceremony / PUBLIC_DIR, public_only / PUBLIC_DIR)
    ring = KeyRing(public_only, generate_missing=True)
    for org in ("gm0363", "consent", "veilig-thuis-amsterdam"):
        assert ring.x25519_public(org).public_bytes_raw() == (
            KeyRing(ceremony, generate_missing=False).x25519_private(org).public_key().public_bytes_raw()
        )
        ring.ed25519_public(org)
    assert private_files(public_only) == set(), "a public lookup generated a private key"


@pytest.mark.parametrize("lookup", ["x25519_public", "ed25519_public"])
def test_a_public_lookup_never_reads_a_private_file(ceremony: Path, tmp_path: Path, lookup: str) -> None:
    private_only = tmp_path / "keys"
    private_only.mkdir()
    for name in private_files(ceremony):
        (private_only / name).write_bytes((ceremony / name).read_bytes())
    for generate in (False, True):
        with pytest.raises(MissingKeyError, match="public key of 'consent'"):
            getattr(KeyRing(private_only, generate_missing=generate), lookup)("consent")
    assert not (private_only / PUBLIC_DIR).exists()


def test_the_registry_looks_public_keys_up_in_public_files_only(
    ceremony: Path, tmp_path: Path, project_config_dir: Path
) -> None:
    empty = tmp_path / "keys"
    registry = Registry.load(project_config_dir, KeyRing(empty, generate_missing=True))
    with pytest.raises(MissingKeyError):
        registry.x25519_public("riec-amsterdam")
    with pytest.raises(MissingKeyError):
        registry.ed25519_public("gm0363")
    assert not empty.exists(), "a public lookup created key material"
    shutil.copytree(ceremony / PUBLIC_DIR, empty / PUBLIC_DIR)
    registry = Registry.load(project_config_dir, KeyRing(empty, generate_missing=False))
    registry.x25519_public("riec-amsterdam")
    registry.ed25519_public("gm0363")


def _foreign_reads(service: str) -> list[tuple[str, str]]:
    """(method, name) of private material that is not `service`'s own."""
    others = [other for other in SERVICE_KEYS if other != service]
    foreign_secrets = {name for other in others for name in SERVICE_KEYS[other].secrets}
    foreign_secrets -= SERVICE_KEYS[service].secrets  # the subject-pseudonym key: signals' and audit's
    return [
        ("ed25519_private", "gm0363"),
        ("x25519_private", "veilig-thuis-amsterdam"),
        ("ed25519_private", DEV_ISSUER),
        ("secret", "some-other-secret"),
        *(("ed25519_private", other) for other in others),
        *(("x25519_private", other) for other in others),
        *(("secret", name) for name in sorted(foreign_secrets)),
    ]


@pytest.mark.parametrize("service", sorted(SERVICE_KEYS))
@pytest.mark.parametrize("generate", [True, False])
def test_a_service_ring_refuses_every_private_file_but_its_own(
    ceremony: Path, tmp_path: Path, service: str, generate: bool
) -> None:
    for keys_dir in (ceremony, tmp_path / "empty"):
        ring = KeyRing.for_service(service, keys_dir, generate_missing=generate)
        for method, name in _foreign_reads(service):
            with pytest.raises(KeyScopeError):
                getattr(ring, method)(name)
    assert not (tmp_path / "empty").exists(), "a refused read created a file"


def test_audit_holds_its_signing_key_and_the_subject_pseudonym_key_alone(ceremony: Path) -> None:
    ring = KeyRing.for_service("audit", ceremony, generate_missing=True)
    ring.ed25519_private("audit")
    signals = KeyRing.for_service("signals", ceremony, generate_missing=True)
    assert ring.secret("subject-pseudonyms") == signals.secret("subject-pseudonyms")
    for foreign in ("key-encryption-key", "partner-pseudonyms"):
        with pytest.raises(KeyScopeError):
            ring.secret(foreign)
    with pytest.raises(KeyScopeError):
        ring.x25519_private("audit")  # nothing is sealed to audit


def test_an_organisation_scope_reaches_its_own_pairs_only(ceremony: Path) -> None:
    ring = KeyRing(ceremony, generate_missing=False, scope=KeyScope.organisation("riec-amsterdam"))
    ring.x25519_private("riec-amsterdam")
    ring.ed25519_private("riec-amsterdam")
    with pytest.raises(KeyScopeError):
        ring.x25519_private("veilig-thuis-amsterdam")
    with pytest.raises(KeyScopeError):
        ring.secret("partner-pseudonyms")


def test_a_service_generating_its_own_key_in_development_publishes_the_public_half(tmp_path: Path) -> None:
    ring = KeyRing.for_service("consent", tmp_path, generate_missing=True)
    private = ring.x25519_private("consent")
    assert KeyRing(tmp_path, generate_missing=False).x25519_public("consent").public_bytes_raw() == (
        private.public_key().public_bytes_raw()
    )
    generate_development_keys(tmp_path, ["consent"])  # the ceremony keeps what exists
    assert KeyRing(tmp_path, generate_missing=False).x25519_private("consent").private_bytes_raw() == (
        private.private_bytes_raw()
    )


def _settings(service: str, keys_dir: Path, root: Path) -> Any:
    if service == "signals":
        return SignalsSettings(keys_dir=keys_dir, signals_database_url=f"sqlite:///{root / 'signals.db'}")
    if service == "consent":
        return ConsentSettings(keys_dir=keys_dir)
    return AuditSettings(keys_dir=keys_dir, audit_database_url=f"sqlite:///{root / 'audit.db'}")


_CREATE_APP: dict[str, Callable[[Any], Any]] = {
    "signals": create_signals,
    "consent": create_consent,
    "audit": create_audit,
}


@pytest.mark.parametrize("service", sorted(SERVICE_KEYS))
async def test_a_service_starts_with_its_own_private_files_and_the_public_keys_alone(
    ceremony: Path, tmp_path: Path, service: str
) -> None:
    """Its keys folder holds nothing else: reading (or, in development, making) another
    organisation's private key would fail or leave a file here."""
    keys_dir = tmp_path / "keys"
    export_service_keys(ceremony, service, keys_dir)
    publics = public_files(keys_dir)
    _CREATE_APP[service](_settings(service, keys_dir, tmp_path))
    assert private_files(keys_dir) <= SERVICE_KEYS[service].files
    assert public_files(keys_dir) == publics
    # its own Kafka password, no one else's
    assert {path.name for path in (keys_dir / "kafka").iterdir()} == {f"{service}.password"}


@pytest.mark.parametrize("service", sorted(SERVICE_KEYS))
async def test_a_service_started_on_the_ceremonys_folder_creates_no_other_private_file(
    ceremony: Path, tmp_path: Path, service: str
) -> None:
    keys_dir = tmp_path / "keys"
    shutil.copytree(ceremony, keys_dir)
    before = private_files(keys_dir)
    _CREATE_APP[service](_settings(service, keys_dir, tmp_path))
    assert private_files(keys_dir) - before <= SERVICE_KEYS[service].files
