"""The registry of organisations: who takes part, in which role, with which keys.

Loaded from `<config_dir>/organisations.yaml`. Public keys may be given there (base64 of the
raw 32 bytes); where one is absent, the key ring's public file supplies it (in development
`devstack.keys` writes those before the services start). A public lookup never opens, derives
or generates a private key: a service holds no other organisation's private key.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from shared.crypto.keys import KeyRing


class OrganisationKind(StrEnum):
    MUNICIPALITY = "municipality"
    PARTNER = "partner"
    SERVICE = "service"
    PLATFORM = "platform"  # the operator of safety-chain itself (its privacy officer reads all)


class Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: OrganisationKind
    name: str
    kafka_principal: str | None = None
    x25519_public: str | None = Field(default=None, description="base64 raw public key.")
    ed25519_public: str | None = Field(default=None, description="base64 raw public key.")


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisations: list[Organisation]


class UnknownOrganisationError(LookupError):
    pass


class Registry:
    def __init__(self, organisations: list[Organisation], keys: KeyRing) -> None:
        ids = [organisation.id for organisation in organisations]
        duplicates = {org_id for org_id in ids if ids.count(org_id) > 1}
        if duplicates:
            raise ValueError(f"duplicate organisation ids: {sorted(duplicates)}")
        self._by_id = {organisation.id: organisation for organisation in organisations}
        self._keys = keys
        self._x25519: dict[str, X25519PublicKey] = {}
        self._ed25519: dict[str, Ed25519PublicKey] = {}

    @classmethod
    def load(cls, config_dir: Path, keys: KeyRing) -> Registry:
        raw = yaml.safe_load((Path(config_dir) / "organisations.yaml").read_text(encoding="utf-8"))
        return cls(RegistryFile.model_validate(raw).organisations, keys)

    def get(self, org_id: str) -> Organisation:
        try:
            return self._by_id[org_id]
        except KeyError:
            raise UnknownOrganisationError(org_id) from None

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
                else self._keys.x25519_public(org_id)
            )
        return self._x25519[org_id]

    def ed25519_public(self, org_id: str) -> Ed25519PublicKey:
        """The key `org_id` signs with (records, receipts, events). Looked up once per process."""
        if org_id not in self._ed25519:
            organisation = self.get(org_id)
            self._ed25519[org_id] = (
                Ed25519PublicKey.from_public_bytes(base64.b64decode(organisation.ed25519_public))
                if organisation.ed25519_public
                else self._keys.ed25519_public(org_id)
            )
        return self._ed25519[org_id]

    def all_ids(self) -> list[str]:
        return list(self._by_id)
