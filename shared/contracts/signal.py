"""What a municipal system submits: one safety-chain signal (schema v1).

A signal is a discriminated union on `category`: every category has its own attributes model,
so a woonoverlast signal must name an address and an ondermijning signal a KvK number, while
the fields every signal shares live in `_SignalBase`. The subject is a union on `kind`:
a person (BSN), an address (postcode + house number) or an organisation (KvK number).

Validation messages never echo the submitted value: rejections travel to Kafka, the audit log
and the logs, and the value may be personal data.

Every field says whether it can identify a person (`Identifying`, shown in the JSON Schema as
`x-identifying`); `deliverable_fields` derives from it what agreements may share without
identifying data, so a new field cannot be forgotten.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

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


class Identifying(StrEnum):
    """Whether a field can identify a person, declared on every field of the contract models.

    An agreement that is not identifying may share only `NO` fields, and `FREE_TEXT` fields
    where it explicitly allows free text (shared.contracts.agreements).
    """

    YES = "yes"
    """Names or points at a person by itself: BSN, name, birth date, an address, and a KvK
    number or trade name (a sole trader is a natural person)."""
    FREE_TEXT = "free_text"
    """Typed by a person, so it can name or describe anyone: identifying unless an agreement
    records that providers write it without identifying details."""
    NO = "no"
    """A closed set of values (codes, flags, counts) or a moment: identifies no one alone."""


IDENTIFYING_KEY = "x-identifying"
"""The JSON Schema keyword under which every field shows its `Identifying` value."""


def _marked(identifying: Identifying) -> JsonDict:
    return {IDENTIFYING_KEY: identifying.value}


IDENTIFIES = _marked(Identifying.YES)
FREE_TEXT = _marked(Identifying.FREE_TEXT)
NOT_IDENTIFYING = _marked(Identifying.NO)


def declared_identifying(field: FieldInfo) -> Identifying | None:
    """What a field declares about identifying a person; None when it declares nothing."""
    extra = field.json_schema_extra
    value = extra.get(IDENTIFYING_KEY) if isinstance(extra, dict) else None
    return Identifying(value) if isinstance(value, str) else None


def _frozen() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Address(BaseModel):
    """A Dutch address as the BAG identifies it: postcode and house number (+ letter, addition).

    Every part is identifying: an address points at the people who live there."""

    model_config = _frozen()

    postcode: str = Field(
        description="Dutch postcode, e.g. 1012AB (a space is allowed).", json_schema_extra=IDENTIFIES
    )
    house_number: int = Field(ge=1, le=99999, json_schema_extra=IDENTIFIES)
    house_letter: str | None = Field(default=None, pattern=r"^[A-Za-z]$", json_schema_extra=IDENTIFIES)
    addition: str | None = Field(
        default=None, max_length=4, pattern=r"^[A-Za-z0-9]+$", json_schema_extra=IDENTIFIES
    )

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

    kind: Literal["person"] = Field(default="person", json_schema_extra=NOT_IDENTIFYING)
    bsn: str = Field(
        description="Burgerservicenummer, nine digits passing the eleven-test.", json_schema_extra=IDENTIFIES
    )
    name: str | None = Field(
        default=None, max_length=200, description="Display name.", json_schema_extra=IDENTIFIES
    )
    birth_date: date | None = Field(default=None, json_schema_extra=IDENTIFIES)

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

    kind: Literal["address"] = Field(default="address", json_schema_extra=NOT_IDENTIFYING)


class OrganisationSubject(BaseModel):
    """An organisation, identified by its KvK (Chamber of Commerce) number. Its number and
    trade name are identifying: a sole trader (eenmanszaak) is a natural person."""

    model_config = _frozen()

    kind: Literal["organisation"] = Field(default="organisation", json_schema_extra=NOT_IDENTIFYING)
    kvk_number: str = Field(description="Eight-digit KvK number.", json_schema_extra=IDENTIFIES)
    trade_name: str | None = Field(default=None, max_length=200, json_schema_extra=IDENTIFIES)

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
SUBJECT_MODELS: tuple[type[BaseModel], ...] = get_args(get_args(Subject)[0])


# --- Category-specific attributes ---------------------------------------------------------
# Every attribute declares whether it identifies (json_schema_extra): a string anyone can type
# into is FREE_TEXT, whatever its name suggests.


class HuiselijkGeweldAttributes(BaseModel):
    model_config = _frozen()

    children_present: bool = Field(
        default=False, description="Children live in the household.", json_schema_extra=NOT_IDENTIFYING
    )
    children_count: int | None = Field(default=None, ge=0, le=30, json_schema_extra=NOT_IDENTIFYING)
    risk_assessment: Literal["laag", "verhoogd", "hoog"] | None = Field(
        default=None, json_schema_extra=NOT_IDENTIFYING
    )
    perpetrator_known: bool | None = Field(default=None, json_schema_extra=NOT_IDENTIFYING)


class KindermishandelingAttributes(BaseModel):
    model_config = _frozen()

    child_birth_date: date = Field(
        description="The child's birth date: under 18 on the day reported.", json_schema_extra=IDENTIFIES
    )
    school_reported: bool = Field(default=False, json_schema_extra=NOT_IDENTIFYING)
    signs: tuple[Literal["lichamelijk", "emotioneel", "verwaarlozing", "seksueel", "getuige"], ...] = Field(
        default=(), json_schema_extra=NOT_IDENTIFYING
    )

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

    danger_to_self: bool = Field(default=False, json_schema_extra=NOT_IDENTIFYING)
    danger_to_others: bool = Field(default=False, json_schema_extra=NOT_IDENTIFYING)
    police_code: Literal["E33"] | None = Field(
        default=None, description="Police incident code, if any.", json_schema_extra=NOT_IDENTIFYING
    )


class RadicaliseringAttributes(BaseModel):
    model_config = _frozen()

    phase: Literal["vatbaar", "in_beweging", "radicaal", "extremistisch"] | None = Field(
        default=None, json_schema_extra=NOT_IDENTIFYING
    )
    online_activity: bool = Field(default=False, json_schema_extra=NOT_IDENTIFYING)


class OndermijningAttributes(BaseModel):
    model_config = _frozen()

    kvk_number: str = Field(
        description="KvK number of the business involved (a sole trader's identifies a person).",
        json_schema_extra=IDENTIFIES,
    )
    sector: str | None = Field(
        default=None, max_length=100, description="Free text, e.g. horeca.", json_schema_extra=FREE_TEXT
    )
    indicators: tuple[str, ...] = Field(
        default=(), max_length=20, description="Free text, one indicator each.", json_schema_extra=FREE_TEXT
    )

    @field_validator("kvk_number")
    @classmethod
    def _kvk(cls, kvk_number: str) -> str:
        if not is_kvk_number(kvk_number):
            raise ValueError("KvK number must be eight digits")
        return kvk_number


class WoonoverlastAttributes(BaseModel):
    model_config = _frozen()

    address: Address = Field(description="Where the nuisance occurs.", json_schema_extra=IDENTIFIES)
    nuisance_type: Literal["geluid", "vervuiling", "intimidatie", "drugs", "overig"] = Field(
        json_schema_extra=NOT_IDENTIFYING
    )
    duration_weeks: int | None = Field(default=None, ge=0, le=520, json_schema_extra=NOT_IDENTIFYING)


class MensenhandelAttributes(BaseModel):
    model_config = _frozen()

    exploitation_type: Literal["seksueel", "arbeid", "criminele", "overig"] = Field(
        json_schema_extra=NOT_IDENTIFYING
    )
    victim_minor: bool | None = Field(default=None, json_schema_extra=NOT_IDENTIFYING)


class JeugdcriminaliteitAttributes(BaseModel):
    model_config = _frozen()

    offence_type: str | None = Field(
        default=None, max_length=100, description="Free text.", json_schema_extra=FREE_TEXT
    )
    school_attendance: Literal["regulier", "verzuim", "geen"] | None = Field(
        default=None, json_schema_extra=NOT_IDENTIFYING
    )
    first_offence: bool | None = Field(default=None, json_schema_extra=NOT_IDENTIFYING)


class ZorgmijdingAttributes(BaseModel):
    model_config = _frozen()

    care_refused: tuple[str, ...] = Field(
        default=(),
        max_length=20,
        description="Free text, one refused form of care each.",
        json_schema_extra=FREE_TEXT,
    )
    living_conditions: Literal["normaal", "vervuild", "onbewoonbaar"] | None = Field(
        default=None, json_schema_extra=NOT_IDENTIFYING
    )


# --- The signal ---------------------------------------------------------------------------


class _SignalBase(BaseModel):
    """Fields every signal has, whatever its category."""

    model_config = _frozen()

    signal_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Chosen by the publisher; makes retries idempotent.",
        json_schema_extra=NOT_IDENTIFYING,
    )
    municipality: str = Field(
        pattern=r"^gm[0-9]{4}$", description="CBS code, e.g. gm0363.", json_schema_extra=NOT_IDENTIFYING
    )
    severity: Severity = Field(json_schema_extra=NOT_IDENTIFYING)
    occurred_at: AwareDatetime = Field(
        description="When it happened; not in the future.", json_schema_extra=NOT_IDENTIFYING
    )
    purpose: str = Field(
        min_length=3,
        max_length=100,
        pattern=r"^[a-z0-9_]+$",
        description="Purpose code the municipality shares for, e.g. veiligheid_huiselijk_geweld.",
        json_schema_extra=NOT_IDENTIFYING,
    )
    legal_basis: str | None = Field(
        default=None,
        max_length=200,
        description="The municipality's claim; consent decides.",
        json_schema_extra=FREE_TEXT,
    )
    subject: Subject = Field(json_schema_extra=IDENTIFIES)
    summary: str = Field(
        min_length=1,
        max_length=MAX_SUMMARY_CHARS,
        description="Free text: what happened. Can name or describe people, so it counts as identifying.",
        json_schema_extra=FREE_TEXT,
    )
    retention_days: int | None = Field(default=None, ge=1, le=3650, json_schema_extra=NOT_IDENTIFYING)
    classification: Classification = Field(default=Classification.BBN2, json_schema_extra=NOT_IDENTIFYING)

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, occurred_at: datetime) -> datetime:
        if occurred_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at lies in the future")
        return occurred_at


class HuiselijkGeweldSignal(_SignalBase):
    category: Literal[Category.HUISELIJK_GEWELD] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: HuiselijkGeweldAttributes = Field(default_factory=HuiselijkGeweldAttributes)


class KindermishandelingSignal(_SignalBase):
    category: Literal[Category.KINDERMISHANDELING] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: KindermishandelingAttributes


class VerwardGedragSignal(_SignalBase):
    category: Literal[Category.VERWARD_GEDRAG] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: VerwardGedragAttributes = Field(default_factory=VerwardGedragAttributes)


class RadicaliseringSignal(_SignalBase):
    category: Literal[Category.RADICALISERING] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: RadicaliseringAttributes = Field(default_factory=RadicaliseringAttributes)


class OndermijningSignal(_SignalBase):
    category: Literal[Category.ONDERMIJNING] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: OndermijningAttributes


class WoonoverlastSignal(_SignalBase):
    category: Literal[Category.WOONOVERLAST] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: WoonoverlastAttributes


class MensenhandelSignal(_SignalBase):
    category: Literal[Category.MENSENHANDEL] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: MensenhandelAttributes


class JeugdcriminaliteitSignal(_SignalBase):
    category: Literal[Category.JEUGDCRIMINALITEIT] = Field(json_schema_extra=NOT_IDENTIFYING)
    attributes: JeugdcriminaliteitAttributes = Field(default_factory=JeugdcriminaliteitAttributes)


class ZorgmijdingSignal(_SignalBase):
    category: Literal[Category.ZORGMIJDING] = Field(json_schema_extra=NOT_IDENTIFYING)
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


def attribute_models() -> dict[Category, type[BaseModel]]:
    """Each category's attributes model."""
    return {
        category: model.model_fields["attributes"].annotation  # type: ignore[misc]
        for category, model in SIGNAL_MODELS.items()
    }


def attribute_names() -> frozenset[str]:
    """Every category attribute's name, for agreements that share single attributes."""
    return frozenset(name for model in attribute_models().values() for name in model.model_fields)


FieldSource = tuple[type[BaseModel], str]
"""One field of one contract model: (model, field name)."""


def deliverable_sources() -> dict[str, tuple[FieldSource, ...]]:
    """Every field an agreement can name (README, "Agreements"), with the model fields it is
    made of; services.consent.enforcement.available_fields maps the same names to the data.

    - `municipality`, `category`, `severity`, `occurred_at`, `purpose`, `summary`: the signal's own;
    - `subject.kind`, `subject.address` (all of an address subject), and `subject.<name>` for
      every other field of a subject model;
    - `attributes.<name>`: that attribute, in every category that has it;
    - `attributes`: every attribute of every category.
    """
    signals = tuple(SIGNAL_MODELS.values())
    attributes = attribute_models().values()
    sources: dict[str, tuple[FieldSource, ...]] = {
        name: tuple((model, name) for model in signals)
        for name in ("municipality", "category", "severity", "occurred_at", "purpose", "summary")
    }
    sources["attributes"] = tuple((model, name) for model in attributes for name in model.model_fields)
    for attribute in sorted(attribute_names()):
        sources[f"attributes.{attribute}"] = tuple(
            (model, attribute) for model in attributes if attribute in model.model_fields
        )
    sources["subject.kind"] = tuple((model, "kind") for model in SUBJECT_MODELS)
    sources["subject.address"] = tuple((AddressSubject, name) for name in Address.model_fields)
    for model in (PersonSubject, OrganisationSubject):
        for name in model.model_fields:
            if name != "kind":
                sources[f"subject.{name}"] = ((model, name),)
    return sources


_RANK = (Identifying.NO, Identifying.FREE_TEXT, Identifying.YES)


def deliverable_fields() -> dict[str, Identifying]:
    """Every field an agreement can name, and whether it can identify a person: the most
    identifying declaration among the model fields it is made of. A model field that declares
    nothing counts as identifying, so a forgotten declaration fails closed."""
    return {
        name: max(
            (declared_identifying(model.model_fields[field]) or Identifying.YES for model, field in parts),
            key=_RANK.index,
        )
        for name, parts in deliverable_sources().items()
    }
