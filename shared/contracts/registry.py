"""The registry of organisations: who takes part, in which role, with which keys.

Loaded from `<config_dir>/organisations.yaml`. Public keys may be given there (base64 of the
raw 32 bytes); where one is absent, the key ring's public file supplies it (in development
`devstack.keys` writes those before the services start). A public lookup never opens, derives
or generates a private key: a service holds no other organisation's private key.
"""

from __future__ import annotations

import base64
import os
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.crypto.keys import KeyRing, MissingKeyError
from shared.contracts.sources import OIN_PATTERN, SYSTEM_PATTERN, MalformedSourceError, Source, parse_source
from shared.contracts.yamlload import safe_load


class OrganisationKind(StrEnum):
    MUNICIPALITY = "municipality"
    PARTNER = "partner"
    SERVICE = "service"
    PLATFORM = "platform"  # the operator of safety-chain itself (its privacy officer reads all)


DEFAULT_SYSTEMS: dict[OrganisationKind, str] = {
    OrganisationKind.MUNICIPALITY: "safety-chain-publisher",  # publisher SDK, or the signals API
    OrganisationKind.PARTNER: "safety-chain-partner",  # the partner SDK, which signs receipts
    OrganisationKind.PLATFORM: "beheer",  # the operator's own management (writes no records)
}
"""The system named in an organisation's CloudEvents `source` unless organisations.yaml names
one; a service's system is its id (signals, consent, audit)."""


class Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: OrganisationKind
    name: str
    oin: str = Field(
        pattern=OIN_PATTERN,
        description="Organisatie-identificatienummer (20 digits); a service carries the OIN of the"
        " platform operator it belongs to.",
    )
    system: str | None = Field(
        default=None,
        pattern=SYSTEM_PATTERN,
        description="The system named in this organisation's CloudEvents source (default by kind).",
    )
    kafka_principal: str | None = None
    x25519_public: str | None = Field(default=None, description="base64 raw public key.")
    ed25519_public: str | None = Field(default=None, description="base64 raw public key.")

    @property
    def source(self) -> Source:
        """The OIN and system its CloudEvents `source` names (NL GOV profile)."""
        system = self.system or (
            self.id if self.kind is OrganisationKind.SERVICE else DEFAULT_SYSTEMS[self.kind]
        )
        return Source(self.oin, system)


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisations: list[Organisation]


class UnknownOrganisationError(LookupError):
    pass


class UnknownSourceError(UnknownOrganisationError):
    """A CloudEvents source that is malformed or names no organisation in the registry."""


def _check_oins(organisations: list[Organisation]) -> None:
    """An OIN names one organisation; only the platform operator's services share its OIN (they
    are its systems), told apart by their system names."""
    by_oin: dict[str, list[Organisation]] = {}
    for organisation in organisations:
        by_oin.setdefault(organisation.oin, []).append(organisation)
    for oin, holders in by_oin.items():
        owners = [org for org in holders if org.kind is not OrganisationKind.SERVICE]
        if len(holders) > 1 and (
            len(owners) > 1 or any(o.kind is not OrganisationKind.PLATFORM for o in owners)
        ):
            raise ValueError(f"OIN {oin} is given to {sorted(org.id for org in holders)}")
    platform_oins = {org.oin for org in organisations if org.kind is OrganisationKind.PLATFORM}
    strays = [
        org.id
        for org in organisations
        if org.kind is OrganisationKind.SERVICE and org.oin not in platform_oins
    ]
    if platform_oins and strays:
        raise ValueError(f"services {sorted(strays)} must carry the platform operator's OIN")
    sources = [org.source for org in organisations]
    repeated = {source.urn for source in sources if sources.count(source) > 1}
    if repeated:
        raise ValueError(f"sources named twice: {sorted(repeated)}")


class Registry:
    def __init__(self, organisations: list[Organisation], keys: KeyRing | None = None) -> None:
        """`keys` supplies the public keys organisations.yaml does not give; without it only the
        keys given there can be looked up (MissingKeyError otherwise)."""
        ids = [organisation.id for organisation in organisations]
        duplicates = {org_id for org_id in ids if ids.count(org_id) > 1}
        if duplicates:
            raise ValueError(f"duplicate organisation ids: {sorted(duplicates)}")
        _check_oins(organisations)
        self._by_id = {organisation.id: organisation for organisation in organisations}
        self._by_source = {organisation.source: organisation for organisation in organisations}
        self._keys = keys
        self._x25519: dict[str, X25519PublicKey] = {}
        self._ed25519: dict[str, Ed25519PublicKey] = {}

    @classmethod
    def load(cls, config_dir: Path, keys: KeyRing | None = None) -> Registry:
        raw = safe_load((Path(config_dir) / "organisations.yaml").read_text(encoding="utf-8"))
        return cls(RegistryFile.model_validate(raw).organisations, keys)

    @classmethod
    def configured(cls) -> Registry:
        """The registry in `$SC_CONFIG_DIR` (the services' setting of that name), else in
        ./config: what the SDKs read when they are not handed a registry or a source."""
        return cls.load(Path(os.environ.get("SC_CONFIG_DIR") or "config"))

    def get(self, org_id: str) -> Organisation:
        try:
            return self._by_id[org_id]
        except KeyError:
            raise UnknownOrganisationError(org_id) from None

    def source(self, org_id: str) -> str:
        """The CloudEvents `source` of the records `org_id` writes:
        urn:nld:oin:<its OIN>:systeem:<its system> (shared.contracts.sources)."""
        return self.get(org_id).source.urn

    def organisation_at(self, source: str) -> Organisation:
        """The organisation a received CloudEvents `source` names; UnknownSourceError when it is
        malformed or names no organisation here (treat it as an unknown signer)."""
        try:
            return self._by_source[parse_source(source)]
        except MalformedSourceError as error:
            raise UnknownSourceError(str(error)) from None
        except KeyError:
            raise UnknownSourceError("ce_source names no registered organisation and system") from None

    def is_kind(self, org_id: str, kind: OrganisationKind) -> bool:
        organisation = self._by_id.get(org_id)
        return organisation is not None and organisation.kind is kind

    def of_kind(self, kind: OrganisationKind) -> list[Organisation]:
        return [org for org in self._by_id.values() if org.kind is kind]

    @property
    def partner_ids(self) -> list[str]:
        return [org.id for org in self.of_kind(OrganisationKind.PARTNER)]

    def x25519_public(self, org_id: str) -> X25519PublicKey:
        """The key deliveries to `org_id` are sealed to. Looked up once per process."""
        if org_id not in self._x25519:
            organisation = self.get(org_id)
            self._x25519[org_id] = (
                X25519PublicKey.from_public_bytes(base64.b64decode(organisation.x25519_public))
                if organisation.x25519_public
                else self._ring(org_id).x25519_public(org_id)
            )
        return self._x25519[org_id]

    def ed25519_public(self, org_id: str) -> Ed25519PublicKey:
        """The key `org_id` signs with (records, receipts, events). Looked up once per process."""
        if org_id not in self._ed25519:
            organisation = self.get(org_id)
            self._ed25519[org_id] = (
                Ed25519PublicKey.from_public_bytes(base64.b64decode(organisation.ed25519_public))
                if organisation.ed25519_public
                else self._ring(org_id).ed25519_public(org_id)
            )
        return self._ed25519[org_id]

    def _ring(self, org_id: str) -> KeyRing:
        if self._keys is None:
            raise MissingKeyError(f"no public key of {org_id} in organisations.yaml, and no key ring")
        return self._keys

    def all_ids(self) -> list[str]:
        return list(self._by_id)
