"""Every CloudEvents `type` follows the NL GOV profile: reverse-DNS notation (safetychain.nl
reversed) with exactly one version, `v<N>`, as its last part; and every context attribute name
is lower-case letters and digits, at most 20 characters."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import shared.contracts
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import SIGNAL_SUBMITTED_HEADERS, SIGNAL_SUBMITTED_TYPE, Event
from shared.contracts.topics import all_topics

REVERSE_DNS_WITH_ONE_VERSION = re.compile(r"^nl\.safetychain(\.[a-z][a-z0-9-]*[a-z0-9])+\.v[1-9][0-9]*$")
VERSION_LABEL = re.compile(r"^v[0-9]+$")
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def _subclasses(cls: type[Event]) -> list[type[Event]]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def contract_modules() -> list[str]:
    """Every module of shared.contracts, imported: an event model defined in any of them is a
    subclass of Event from then on, so `event_models` cannot miss it for want of an import."""
    names = [info.name for info in pkgutil.iter_modules(shared.contracts.__path__, "shared.contracts.")]
    for name in names:
        importlib.import_module(name)
    return names


def event_models() -> list[type[Event]]:
    contract_modules()
    return [model for model in _subclasses(Event) if "event_type" in vars(model)]


def declared_in_source(module: str) -> set[str]:
    """The classes of a module's source that give `event_type` a value of their own (the base
    class only annotates it), read from the text rather than from the imported classes."""
    path = Path(importlib.import_module(module).__file__ or "")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        f"{module}.{node.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(
            (isinstance(statement, ast.Assign) or (isinstance(statement, ast.AnnAssign) and statement.value))
            and "event_type" in {target.id for target in _targets(statement) if isinstance(target, ast.Name)}
            for statement in node.body
        )
    }


def _targets(statement: ast.AnnAssign | ast.Assign) -> list[ast.expr]:
    return [statement.target] if isinstance(statement, ast.AnnAssign) else statement.targets


def all_types() -> list[str]:
    return sorted({*(model.event_type for model in event_models()), SIGNAL_SUBMITTED_TYPE})


def is_profile_type(event_type: str) -> bool:
    if not REVERSE_DNS_WITH_ONE_VERSION.fullmatch(event_type):
        return False
    return sum(1 for label in event_type.split(".") if VERSION_LABEL.fullmatch(label)) == 1


def test_the_models_are_all_found() -> None:
    declared = {found for module in contract_modules() for found in declared_in_source(module)}
    assert {f"{model.__module__}.{model.__qualname__}" for model in event_models()} == declared
    assert len(all_types()) >= 14
    assert "nl.safetychain.signal.accepted.v1" in all_types()
    assert "nl.safetychain.consent.agreement.v1" in all_types()


@pytest.mark.parametrize("event_type", all_types())
def test_every_event_type_is_reverse_dns_with_one_version(event_type: str) -> None:
    assert event_type.startswith(TYPE_PREFIX) and TYPE_PREFIX == "nl.safetychain."
    assert is_profile_type(event_type), event_type


def test_every_type_on_every_topic_is_one_of_the_models() -> None:
    on_topics = {t for spec in all_topics(["veilig-thuis-amsterdam"]) for t in spec.event_types}
    assert on_topics <= set(all_types())
    assert all(is_profile_type(event_type) for event_type in on_topics)


@pytest.mark.parametrize(
    "event_type",
    [
        "signal.accepted.v1",  # not reverse-DNS
        "nl.safetychain.signal.accepted",  # no version
        "nl.safetychain.signal.accepted.v1.v2",  # two versions
        "nl.safetychain.v1.signal.accepted.v1",
        "nl.safetychain.signal.accepted.1",
        "nl.safetychain.signal.accepted.V1",
        "nl.safetychain.Signal.accepted.v1",
        "nl.safetychain.signal..accepted.v1",
        "nl.safetychain.signal.accepted-.v1",
        "nl.safetychain.signal.accepted.v1 ",
        "nl.safetychain.signal.accepted.v0",
    ],
)
def test_the_check_refuses_what_the_profile_does_not_allow(event_type: str) -> None:
    assert not is_profile_type(event_type)


def test_every_declared_context_attribute_name_is_short_lower_case_letters_and_digits() -> None:
    names = {"specversion", "id", "source", "type", "time", "subject", "traceparent"}
    names |= {"signature", "signaturekeyid"}
    names |= set(SIGNAL_SUBMITTED_HEADERS.extensions)
    for model in event_models():
        names |= set(model.envelope_headers.extensions)
    assert all(ATTRIBUTE_NAME.fullmatch(name) for name in names), sorted(names)
