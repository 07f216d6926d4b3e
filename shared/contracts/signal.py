"""What a municipal system submits: one safety-chain signal (schema v1).

A signal is a discriminated union on `category`: every category has its own attributes model,
so a woonoverlast signal must name an address and an ondermijning signal a KvK number, while
the fields every signal shares live in `_SignalBase`. The subject is a union on `kind`:
a person (BSN), an address (postcode + house number) or an organisation (KvK number).

Validation messages never echo the submitted value: rejections travel to Kafka, the audit log
and the logs, and the value may be personal data.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

MAX_SUMMARY_CHARS = 4000
CLOCK_SKEW = timedelta(minutes=5)
_POSTCODE = re.compile(r"^([1-9][0-9]{3}) ?([A-Z]{2})$")


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


def normalise_postcode(postcode: str) -> str | None:
    """'1234 ab' -> '1234AB'; None when it is no Dutch postcode."""
    match = _POSTCODE.match(postcode.strip().upper())
    return f"{match.group(1)}{match.group(2)}" if match else None


def is_kvk_number(kvk_number: str) -> bool:
    """Eight digits, not all zero. KvK has assigned numbers without a check digit since 2016, so
    a checksum would refuse real registrations; the format is what can be checked."""
    return len(kvk_number) == 8 and kvk_number.isdigit() and kvk_number != "00000000"


def _frozen() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Address(BaseModel):
    """A Dutch address as the BAG identifies it: postcode and house number (+ letter, addition)."""

    model_config = _frozen()

    postcode: str = Field(description="Dutch postcode, e.g. 1012AB (a space is allowed).")
    house_number: int = Field(ge=1, le=99999)
    house_letter: str | None = Field(default=None, pattern=r"^[A-Za-z]$")
    addition: str | None = Field(default=None, max_length=4, pattern=r"^[A-Za-z0-9]+$")

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, postcode: str) -> str:
        normalised = normalise_postcode(postcode)
        if normalised is None:
            raise ValueError("postcode must be four digits (not starting with 0) and two letters")
        return normalised

    def identifier(self) -> str:
        letter = self.house_letter.upper() if self.house_letter else ""
        addition = f"-{self.addition.upper()}" if self.addition else ""
        return f"{self.postcode} {self.house_number}{letter}{addition}"


class PersonSubject(BaseModel):
    """A natural person, identified by BSN. Never leaves the signals service in clear."""

    model_config = _frozen()

    kind: Literal["person"] = "person"
    bsn: str = Field(description="Burgerservicenummer, nine digits passing the eleven-test.")
    name: str | None = Field(default=None, max_length=200, description="Display name.")
    birth_date: date | None = None

    @field_validator("bsn")
    @classmethod
    def _eleven_test(cls, bsn: str) -> str:
        if not passes_eleven_test(bsn):
            raise ValueError("BSN must be nine digits passing the eleven-test")
        return bsn

    def identifier(self) -> str:
        return self.bsn


class AddressSubject(Address):
    """An address as the subject (e.g. a dwelling causing nuisance)."""

    kind: Literal["address"] = "address"


class OrganisationSubject(BaseModel):
    """An organisation, identified by its KvK (Chamber of Commerce) number."""

    model_config = _frozen()

    kind: Literal["organisation"] = "organisation"
    kvk_number: str = Field(description="Eight-digit KvK number.")
    trade_name: str | None = Field(default=None, max_length=200)

    @field_validator("kvk_number")
    @classmethod
    def _kvk(cls, kvk_number: str) -> str:
        if not is_kvk_number(kvk_number):
            raise ValueError("KvK number must be eight digits")
        return kvk_number

    def identifier(self) -> str:
        return self.kvk_number


Subject = Annotated[PersonSubject | AddressSubject | OrganisationSubject, Field(discriminator="kind")]
SUBJECT_KINDS = ("person", "address", "organisation")


# --- Category-specific attributes ---------------------------------------------------------


class HuiselijkGeweldAttributes(BaseModel):
    model_config = _frozen()

    children_present: bool = Field(default=False, description="Children live in the household.")
    children_count: int | None = Field(default=None, ge=0, le=30)
    risk_assessment: Literal["laag", "verhoogd", "hoog"] | None = None
    perpetrator_known: bool | None = None


class KindermishandelingAttributes(BaseModel):
    model_config = _frozen()

    child_birth_date: date = Field(description="The child's birth date: under 18 on the day reported.")
    school_reported: bool = False
    signs: tuple[Literal["lichamelijk", "emotioneel", "verwaarlozing", "seksueel", "getuige"], ...] = ()

    @field_validator("child_birth_date")
    @classmethod
    def _a_child(cls, birth_date: date) -> date:
        today = datetime.now(UTC).date()
        if birth_date > today:
            raise ValueError("child_birth_date lies in the future")
        if (
            today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
        ) >= 18:
            raise ValueError("child_birth_date is of an adult")
        return birth_date


class VerwardGedragAttributes(BaseModel):
    model_config = _frozen()

    danger_to_self: bool = False
    danger_to_others: bool = False
    police_code: Literal["E33"] | None = Field(default=None, description="Police incident code, if any.")


class RadicaliseringAttributes(BaseModel):
    model_config = _frozen()

    phase: Literal["vatbaar", "in_beweging", "radicaal", "extremistisch"] | None = None
    online_activity: bool = False


class OndermijningAttributes(BaseModel):
    model_config = _frozen()

    kvk_number: str = Field(description="KvK number of the business involved.")
    sector: str | None = Field(default=None, max_length=100)
    indicators: tuple[str, ...] = Field(default=(), max_length=20)

    @field_validator("kvk_number")
    @classmethod
    def _kvk(cls, kvk_number: str) -> str:
        if not is_kvk_number(kvk_number):
            raise ValueError("KvK number must be eight digits")
        return kvk_number


class WoonoverlastAttributes(BaseModel):
    model_config = _frozen()

    address: Address = Field(description="Where the nuisance occurs.")
    nuisance_type: Literal["geluid", "vervuiling", "intimidatie", "drugs", "overig"]
    duration_weeks: int | None = Field(default=None, ge=0, le=520)


class MensenhandelAttributes(BaseModel):
    model_config = _frozen()

    exploitation_type: Literal["seksueel", "arbeid", "criminele", "overig"]
    victim_minor: bool | None = None


class JeugdcriminaliteitAttributes(BaseModel):
    model_config = _frozen()

    offence_type: str | None = Field(default=None, max_length=100)
    school_attendance: Literal["regulier", "verzuim", "geen"] | None = None
    first_offence: bool | None = None


class ZorgmijdingAttributes(BaseModel):
    model_config = _frozen()

    care_refused: tuple[str, ...] = Field(default=(), max_length=20)
    living_conditions: Literal["normaal", "vervuild", "onbewoonbaar"] | None = None


# --- The signal ---------------------------------------------------------------------------


class _SignalBase(BaseModel):
    """Fields every signal has, whatever its category."""

    model_config = _frozen()

    signal_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Chosen by the publisher; makes retries idempotent."
    )
    municipality: str = Field(pattern=r"^gm[0-9]{4}$", description="CBS code, e.g. gm0363.")
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
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    classification: Classification = Classification.BBN2

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, occurred_at: datetime) -> datetime:
        if occurred_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at lies in the future")
        return occurred_at


class HuiselijkGeweldSignal(_SignalBase):
    category: Literal[Category.HUISELIJK_GEWELD]
    attributes: HuiselijkGeweldAttributes = Field(default_factory=HuiselijkGeweldAttributes)


class KindermishandelingSignal(_SignalBase):
    category: Literal[Category.KINDERMISHANDELING]
    attributes: KindermishandelingAttributes


class VerwardGedragSignal(_SignalBase):
    category: Literal[Category.VERWARD_GEDRAG]
    attributes: VerwardGedragAttributes = Field(default_factory=VerwardGedragAttributes)


class RadicaliseringSignal(_SignalBase):
    category: Literal[Category.RADICALISERING]
    attributes: RadicaliseringAttributes = Field(default_factory=RadicaliseringAttributes)


class OndermijningSignal(_SignalBase):
    category: Literal[Category.ONDERMIJNING]
    attributes: OndermijningAttributes


class WoonoverlastSignal(_SignalBase):
    category: Literal[Category.WOONOVERLAST]
    attributes: WoonoverlastAttributes


class MensenhandelSignal(_SignalBase):
    category: Literal[Category.MENSENHANDEL]
    attributes: MensenhandelAttributes


class JeugdcriminaliteitSignal(_SignalBase):
    category: Literal[Category.JEUGDCRIMINALITEIT]
    attributes: JeugdcriminaliteitAttributes = Field(default_factory=JeugdcriminaliteitAttributes)


class ZorgmijdingSignal(_SignalBase):
    category: Literal[Category.ZORGMIJDING]
    attributes: ZorgmijdingAttributes = Field(default_factory=ZorgmijdingAttributes)


SignalSubmission = Annotated[
    HuiselijkGeweldSignal
    | KindermishandelingSignal
    | VerwardGedragSignal
    | RadicaliseringSignal
    | OndermijningSignal
    | WoonoverlastSignal
    | MensenhandelSignal
    | JeugdcriminaliteitSignal
    | ZorgmijdingSignal,
    Field(discriminator="category"),
]
"""Any signal; pydantic picks the model by `category`."""


class UncategorisedSignal(_SignalBase):
    """The shared fields alone: validates the rest of a signal whose category is unknown, so a
    rejection can name every problem at once."""

    category: str
    attributes: dict[str, object] = Field(default_factory=dict)


# Derived from the union, so a new category model needs naming in one place only.
SIGNAL_MODELS: dict[Category, type[_SignalBase]] = {
    get_args(model.model_fields["category"].annotation)[0]: model
    for model in get_args(get_args(SignalSubmission)[0])
}

signal_adapter: TypeAdapter[SignalSubmission] = TypeAdapter(SignalSubmission)


def attribute_names() -> frozenset[str]:
    """Every category attribute's name, for agreements that share single attributes."""
    return frozenset(
        name
        for model in SIGNAL_MODELS.values()
        for name in model.model_fields["attributes"].annotation.model_fields  # type: ignore[union-attr]
    )
