"""Sharing agreements (convenanten) as versioned data, readable by a lawyer.

One YAML file per agreement in `<config_dir>/agreements/`. The field names a recipient may
receive come from DELIVERABLE_FIELDS; anything else is refused when the file is loaded.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.signal import Category

DELIVERABLE_FIELDS = frozenset(
    {
        "municipality",
        "category",
        "severity",
        "occurred_at",
        "purpose",
        "summary",
        "attributes",
        "subject.name",
        "subject.bsn",
    }
)


class LegalBasis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    law: str = Field(description="e.g. Wet maatschappelijke ondersteuning 2015")
    article: str = Field(description="e.g. art. 5.2.6")

    def __str__(self) -> str:
        return f"{self.law}, {self.article}"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    fields: tuple[str, ...] = Field(min_length=1, description="What this partner may receive.")

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(fields) - DELIVERABLE_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {unknown}; allowed: {sorted(DELIVERABLE_FIELDS)}")
        return fields


class Agreement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    title: str
    legal_basis: LegalBasis
    providers: tuple[str, ...] = Field(min_length=1, description="Municipalities that may provide.")
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    valid_from: date
    valid_until: date | None = None
    retention_days: int = Field(ge=1, le=3650)

    @model_validator(mode="after")
    def _window(self) -> Agreement:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until lies before valid_from")
        return self

    def recipient(self, partner: str) -> Recipient | None:
        return next((r for r in self.recipients if r.partner == partner), None)

    def valid_at(self, moment: datetime) -> bool:
        day = moment.date()
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


def load_agreements(folder: Path) -> list[Agreement]:
    """Every *.yaml in the folder, sorted by file name; raises on the first invalid file."""
    agreements = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            agreements.append(Agreement.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    return agreements
