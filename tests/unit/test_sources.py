"""CloudEvents sources as the NL GOV profile asks: urn:nld:oin:<OIN>:systeem:<name>, and the
registry that maps them to organisations and back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shared.contracts.registry import (
    Organisation,
    OrganisationKind,
    Registry,
    RegistryFile,
    UnknownSourceError,
)
from shared.contracts.sources import (
    DEVELOPMENT_OIN_PREFIX,
    MalformedSourceError,
    Source,
    parse_source,
    source_urn,
)

PROFILE = re.compile(r"^urn:nld:oin:\d{20}:systeem:[a-z0-9-]+$")
AMSTERDAM_OIN = "00000001002564440000"


def test_a_source_names_the_oin_and_the_system() -> None:
    urn = source_urn(AMSTERDAM_OIN, "safety-chain-publisher")
    assert urn == "urn:nld:oin:00000001002564440000:systeem:safety-chain-publisher"
    assert parse_source(urn) == Source(AMSTERDAM_OIN, "safety-chain-publisher")
    assert parse_source(urn).urn == urn


@pytest.mark.parametrize(
    ("oin", "system"),
    [
        ("0000000100256444000", "signals"),  # 19 digits
        ("000000010025644400000", "signals"),  # 21 digits
        ("0000000100256444000a", "signals"),
        (AMSTERDAM_OIN, "Signals"),  # upper case
        (AMSTERDAM_OIN, "sig nals"),
        (AMSTERDAM_OIN, "-signals"),
        (AMSTERDAM_OIN, ""),
        (AMSTERDAM_OIN, "a:b"),
    ],
)
def test_no_source_is_built_from_a_malformed_oin_or_system(oin: str, system: str) -> None:
    with pytest.raises(ValueError):
        source_urn(oin, system)


@pytest.mark.parametrize(
    "value",
    [
        "gm0363",
        "signals",
        "",
        "urn:nld:oin:00000001002564440000",
        "urn:nld:oin:00000001002564440000:systeem:",
        "urn:nld:oin:0000000100256444000:systeem:signals",
        "urn:nld:kvk:12345678:systeem:signals",
        "URN:NLD:OIN:00000001002564440000:SYSTEEM:signals",
        "urn:nld:oin:00000001002564440000:systeem:signals\n",
        "urn:nld:oin:00000001002564440000:systeem:signals:extra",
        " urn:nld:oin:00000001002564440000:systeem:signals",
    ],
)
def test_anything_else_is_no_source(value: str) -> None:
    with pytest.raises(MalformedSourceError, match=r"^ce_source is no urn:nld:oin:<OIN>:systeem:<name>$"):
        parse_source(value)  # and the value is not echoed


def test_every_organisation_has_a_valid_unique_source_in_the_registry(project_config_dir: Path) -> None:
    registry = Registry.load(project_config_dir)
    sources = {org_id: registry.source(org_id) for org_id in registry.all_ids()}
    assert all(PROFILE.fullmatch(source) for source in sources.values()), sources
    assert len(set(sources.values())) == len(sources)
    for org_id, source in sources.items():
        assert registry.organisation_at(source).id == org_id


def test_the_services_are_systems_of_the_platform_operator(project_config_dir: Path) -> None:
    registry = Registry.load(project_config_dir)
    platform = registry.of_kind(OrganisationKind.PLATFORM)
    assert [org.id for org in platform] == ["safety-chain"]
    for service in ("signals", "consent", "audit"):
        assert registry.source(service) == f"urn:nld:oin:{platform[0].oin}:systeem:{service}"


def test_the_example_oins_are_real_or_marked_as_development_values(project_config_dir: Path) -> None:
    """A municipality's OIN is 00000001 + its RSIN + 000; Amsterdam's is real, the others are
    development values until the COR's are filled in."""
    registry = Registry.load(project_config_dir)
    assert registry.get("gm0363").oin == AMSTERDAM_OIN
    for org_id in registry.all_ids():
        oin = registry.get(org_id).oin
        assert oin == AMSTERDAM_OIN or oin.startswith(DEVELOPMENT_OIN_PREFIX), org_id


def test_an_unknown_or_malformed_source_names_no_organisation(project_config_dir: Path) -> None:
    registry = Registry.load(project_config_dir)
    oin = registry.get("consent").oin
    for source in (
        "consent",  # the old form: an organisation id is no source any more
        f"urn:nld:oin:{oin}:systeem:reporting",  # the platform's OIN, a system it does not have
        "urn:nld:oin:12345678901234567890:systeem:signals",  # a system name, another OIN
        f"urn:nld:oin:{registry.get('gm0363').oin}:systeem:consent",
    ):
        with pytest.raises(UnknownSourceError):
            registry.organisation_at(source)


def _organisations(project_config_dir: Path) -> list[Organisation]:
    raw = yaml.safe_load((project_config_dir / "organisations.yaml").read_text(encoding="utf-8"))
    return RegistryFile.model_validate(raw).organisations


def test_the_registry_refuses_an_organisation_without_a_valid_oin(project_config_dir: Path) -> None:
    raw = yaml.safe_load((project_config_dir / "organisations.yaml").read_text(encoding="utf-8"))
    del raw["organisations"][0]["oin"]
    with pytest.raises(ValueError, match="oin"):
        RegistryFile.model_validate(raw)
    raw["organisations"][0]["oin"] = "2564440"
    with pytest.raises(ValueError, match="oin"):
        RegistryFile.model_validate(raw)


def test_the_registry_refuses_an_oin_given_to_two_organisations(project_config_dir: Path) -> None:
    organisations = _organisations(project_config_dir)
    gm0363 = next(org for org in organisations if org.id == "gm0363")
    twice = [
        org.model_copy(update={"oin": gm0363.oin}) if org.id == "gm0599" else org for org in organisations
    ]
    with pytest.raises(ValueError, match=r"gm0363.*gm0599"):
        Registry(twice)
    # a partner cannot pose as one of the platform's systems either
    platform_oin = next(org.oin for org in organisations if org.kind is OrganisationKind.PLATFORM)
    posing = [
        org.model_copy(update={"oin": platform_oin}) if org.id == "riec-amsterdam" else org
        for org in organisations
    ]
    with pytest.raises(ValueError, match="riec-amsterdam"):
        Registry(posing)


def test_the_registry_refuses_a_service_outside_the_platform_or_a_source_named_twice(
    project_config_dir: Path,
) -> None:
    organisations = _organisations(project_config_dir)
    stray = [
        org.model_copy(update={"oin": "99999999999999999999"}) if org.id == "audit" else org
        for org in organisations
    ]
    with pytest.raises(ValueError, match="audit"):
        Registry(stray)
    twice = [
        org.model_copy(update={"system": "signals"}) if org.id == "consent" else org for org in organisations
    ]
    with pytest.raises(ValueError, match="named twice"):
        Registry(twice)
