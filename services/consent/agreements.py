"""Agreement files: one YAML file per agreement (GitOps-friendly), checked line by line.

`validate_file` reports each problem with the line it stands on, so a lawyer or a privacy
officer editing a file sees where it is wrong (`safety-chain agreements validate DIR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.contracts.agreements import IDENTIFYING_FIELD_ERROR, Agreement, PartySignature
from shared.contracts.crypto.approvals import ApprovalSignatureError, unverified_statement
from shared.contracts.registry import OrganisationKind, Registry
from shared.contracts.yamlload import compose, safe_load


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f" {self.location}:" if self.location else ""
        return f"{self.file}:{self.line}:{where} {self.message}"


def _line_of(node: yaml.Node, location: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at `location` (or of its nearest existing parent)."""
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node = match
    return node.start_mark.line + 1


def _per_field(details: list[ErrorDetails]) -> list[ErrorDetails]:
    """The errors, with an agreement's identifying-field error split into one per field, each
    at that field's location (the agreement-wide check cannot place them itself)."""
    split: list[ErrorDetails] = []
    for detail in details:
        fields = detail.get("ctx", {}).get("fields") if detail["type"] == IDENTIFYING_FIELD_ERROR else None
        if not fields:
            split.append(detail)
            continue
        split += [
            ErrorDetails(type=detail["type"], loc=(*detail["loc"], *location), msg=message, input=None)
            for location, message in fields
        ]
    return split


def validate_text(text: str, name: str) -> tuple[Agreement | None, list[Problem]]:
    try:
        node = compose(text)
        document: Any = safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        return None, [Problem(name, (mark.line + 1) if mark else 1, "", f"not YAML: {error}")]
    if node is None or not isinstance(document, dict):
        return None, [Problem(name, 1, "", "an agreement file holds one mapping")]
    try:
        return Agreement.model_validate(document), []
    except ValidationError as error:
        details = _per_field(error.errors(include_url=False, include_input=False))
        locations = [tuple(detail["loc"]) for detail in details]
        return None, [
            Problem(name, _line_of(node, location), ".".join(str(p) for p in location), detail["msg"])
            for detail, location in zip(details, locations, strict=True)
            # pydantic follows a bad item with "too short" for its list: the item says it all
            if not (
                detail["type"] == "too_short"
                and any(o[: len(location)] == location and o != location for o in locations)
            )
        ]


def validate_file(path: Path) -> tuple[Agreement | None, list[Problem]]:
    return validate_text(path.read_text(encoding="utf-8"), str(path))


def validate_folder(folder: Path) -> tuple[list[Agreement], list[Problem]]:
    agreements: list[Agreement] = []
    problems: list[Problem] = []
    first_file: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        agreement, found = validate_file(path)
        problems += found
        if agreement is None:
            continue
        if agreement.id in first_file:
            problems.append(
                Problem(
                    str(path),
                    1,
                    "id",
                    f"agreement id {agreement.id} is also used in {first_file[agreement.id]}",
                )
            )
            continue
        first_file[agreement.id] = str(path)
        agreements.append(agreement)
    return agreements, problems


def load_agreements(folder: Path) -> list[Agreement]:
    """Every agreement in the folder; raises ValueError listing every problem."""
    agreements, problems = validate_folder(folder)
    if problems:
        raise ValueError("invalid agreements:\n" + "\n".join(str(problem) for problem in problems))
    return agreements


SIGNATURE_SUFFIX = ".jws"
CONFIGURED_SIGNER = "configuration"


def signature_path(folder: Path, agreement: Agreement, organisation: str) -> Path:
    """Where a party's signature on a configured version lives:
    `<folder>/<agreement id>/v<version>/<organisation>.jws` (one compact JWS)."""
    return Path(folder) / agreement.id / f"v{agreement.version}" / f"{organisation}{SIGNATURE_SUFFIX}"


def load_signatures(folders: list[Path], agreement: Agreement) -> tuple[PartySignature, ...]:
    """The signatures found for `agreement`'s version, one per party at most. They are only read
    here: consent checks each against the party's key and the version's content hash."""
    found: dict[str, PartySignature] = {}
    for folder in folders:
        for organisation in sorted(agreement.parties):
            path = signature_path(folder, agreement, organisation)
            if organisation in found or not path.is_file():
                continue
            jws = path.read_text(encoding="ascii").strip()
            try:
                statement = unverified_statement(jws)
            except ApprovalSignatureError:
                continue  # not even shaped like a signature: nothing to present
            signer = f"{organisation}/{CONFIGURED_SIGNER}"  # the party's word, through the configuration
            found[organisation] = PartySignature(statement=statement, signed_by=signer, jws=jws)
    return tuple(found.values())


def registry_problems(agreement: Agreement, registry: Registry) -> list[str]:
    """What the schema cannot know: are the parties registered, in the right role?"""
    problems = [
        f"provider {provider} is not a registered municipality"
        for provider in agreement.providers
        if not registry.is_kind(provider, OrganisationKind.MUNICIPALITY)
    ]
    problems += [
        f"recipient {recipient.partner} is not a registered chain partner"
        for recipient in agreement.recipients
        if not registry.is_kind(recipient.partner, OrganisationKind.PARTNER)
    ]
    return problems
