"""What a municipal system submits: one safety-chain signal (first cut, schema v1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

MAX_SUMMARY_CHARS = 4000
CLOCK_SKEW = timedelta(minutes=5)


class Category(StrEnum):
    HUISELIJK_GEWELD = "huiselijk_geweld"
    KINDERMISHANDELING = "kindermishandeling"
    VERWARD_GEDRAG = "verward_gedrag"
    RADICALISERING = "radicalisering"
    ONDERMIJNING = "ondermijning"
    WOONOVERLAST = "woonoverlast"
    MENSENHANDEL = "mensenhandel"
    JEUGDCRIMINALITEIT = "jeugdcriminaliteit"
    ZORGMIJDING = "zorgmijding"


class Severity(StrEnum):
    LAAG = "laag"
    MIDDEN = "midden"
    HOOG = "hoog"
    ACUUT = "acuut"


class Classification(StrEnum):
    """BIO confidentiality levels (BBN: basisbeveiligingsniveau)."""

    BBN1 = "bbn1"
    BBN2 = "bbn2"
    BBN3 = "bbn3"


def passes_eleven_test(bsn: str) -> bool:
    """The BSN 'elfproef': sum of digit * weight (9..2, then -1) is a positive multiple of 11."""
    if len(bsn) != 9 or not bsn.isdigit():
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    total = sum(int(digit) * weight for digit, weight in zip(bsn, weights, strict=True))
    return total > 0 and total % 11 == 0


class PersonSubject(BaseModel):
    """A natural person, identified by BSN. Never leaves the signals service in clear."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["person"] = "person"
    bsn: str = Field(description="Burgerservicenummer, nine digits passing the eleven-test.")
    name: str | None = Field(default=None, max_length=200, description="Display name.")

    @field_validator("bsn")
    @classmethod
    def _eleven_test(cls, bsn: str) -> str:
        # The message must not echo the value: rejections are logged and published.
        if not passes_eleven_test(bsn):
            raise ValueError("BSN must be nine digits passing the eleven-test")
        return bsn


Subject = Annotated[PersonSubject, Field(discriminator="kind")]


class SignalSubmission(BaseModel):
    """A signal as a municipal system sends it (HTTP body or intake record value)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    signal_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Chosen by the publisher; makes retries idempotent."
    )
    municipality: str = Field(pattern=r"^gm\d{4}$", description="CBS code, e.g. gm0363.")
    category: Category
    severity: Severity
    occurred_at: AwareDatetime = Field(description="When it happened; not in the future.")
    purpose: str = Field(
        min_length=3,
        max_length=100,
        pattern=r"^[a-z0-9_]+$",
        description="Purpose code the municipality shares for, e.g. veiligheid_huiselijk_geweld.",
    )
    legal_basis: str | None = Field(
        default=None, max_length=200, description="The municipality's claim; consent decides."
    )
    subject: Subject
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    classification: Classification = Classification.BBN2

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, occurred_at: datetime) -> datetime:
        if occurred_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at lies in the future")
        return occurred_at
