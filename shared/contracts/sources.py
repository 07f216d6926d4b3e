"""CloudEvents `source` as the NL GOV profile for CloudEvents 1.0 (Logius) asks for it.

A source is a URN in the `nld` namespace that names the organisation by its OIN
(Organisatie-identificatienummer, 20 digits) and the system that produced the event:

    urn:nld:oin:00000001002564440000:systeem:safety-chain-publisher

This module only builds and parses that form; which organisation an OIN and system belong to
is the registry's to say (shared.contracts.registry: `Registry.source`, `Registry.organisation_at`).
System names are lower-case letters, digits and hyphens here, so a source needs no escaping
and compares byte for byte.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

OIN_PATTERN: Final = r"^[0-9]{20}$"
SYSTEM_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
SOURCE_PATTERN: Final = r"^urn:nld:oin:([0-9]{20}):systeem:([a-z0-9][a-z0-9-]{0,62})$"
DEVELOPMENT_OIN_PREFIX: Final = "99999999"
"""OINs of the example organisations that start with this are development values, not issued
ones (no OIN register uses the prefix); production OINs come from the COR (Centrale OIN
Raadpleegvoorziening, Logius)."""

_SOURCE = re.compile(SOURCE_PATTERN)
_OIN = re.compile(OIN_PATTERN)
_SYSTEM = re.compile(SYSTEM_PATTERN)


class MalformedSourceError(ValueError):
    """The value is no `urn:nld:oin:<OIN>:systeem:<name>` URN."""


class Source(NamedTuple):
    oin: str
    system: str

    @property
    def urn(self) -> str:
        return source_urn(self.oin, self.system)


def source_urn(oin: str, system: str) -> str:
    """The source URN of `system` of the organisation with `oin`; ValueError when either is
    not of the form above."""
    if not _OIN.fullmatch(oin):
        raise ValueError(f"an OIN is 20 digits, not {oin!r}")
    if not _SYSTEM.fullmatch(system):
        raise ValueError(f"a system name is lower-case letters, digits and hyphens, not {system!r}")
    return f"urn:nld:oin:{oin}:systeem:{system}"


def parse_source(value: str) -> Source:
    """The OIN and system a source names; MalformedSourceError for anything else (no value is
    echoed: a source that is not ours may carry anything)."""
    match = _SOURCE.fullmatch(value)
    if match is None:
        raise MalformedSourceError("ce_source is no urn:nld:oin:<OIN>:systeem:<name>")
    return Source(match.group(1), match.group(2))
