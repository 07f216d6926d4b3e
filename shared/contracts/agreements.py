"""Sharing agreements (convenanten) and subject directives: the data consent decides on.

Both are contracts: they travel on compacted topics (consent.agreements.v1 keyed by agreement
id, consent.directives.v1 keyed by subject pseudonym), every consent instance rebuilds its state
from them, and the audit log records every change.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.contracts.events import EnvelopeHeaders, Event
from shared.contracts.signal import Category, Identifying, deliverable_fields
from shared.envelope import TYPE_PREFIX

# Derived from what the signal contract's fields declare (shared/contracts/signal.py).
FIELD_IDENTIFYING = deliverable_fields()
DELIVERABLE_FIELDS = frozenset(FIELD_IDENTIFYING)
IDENTIFYING_FIELDS = frozenset(n for n, kind in FIELD_IDENTIFYING.items() if kind is Identifying.YES)
FREE_TEXT_FIELDS = frozenset(n for n, kind in FIELD_IDENTIFYING.items() if kind is Identifying.FREE_TEXT)
FREE_TEXT_ALLOWANCE = "free_text_without_identity"
IDENTIFYING_FIELD_ERROR = "identifying_field"
"""The pydantic error type of a non-identifying agreement that shares identifying fields; its
context's `fields` holds (location, message) per offending field, so agreement files can
report each on its own line."""


class LegalBasis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    law: str = Field(min_length=2, description="e.g. Wet maatschappelijke ondersteuning 2015")
    article: str = Field(min_length=1, description="e.g. art. 5.2.6")

    def __str__(self) -> str:
        return f"{self.law}, {self.article}"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    fields: tuple[str, ...] = Field(min_length=1, description="What this partner may receive, by name.")
    confidential_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Exchanges with this partner (police, public prosecutor) are confidential for this"
        " many days after each decision: withheld from the citizen's access report until then"
        " (VNG Verwerkingenlogging `vertrouwelijkheid`); the privacy officer's version shows them.",
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(fields) - DELIVERABLE_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {unknown}; allowed: {sorted(DELIVERABLE_FIELDS)}")
        return fields


class AgreementStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Agreement(BaseModel):
    """One version of a sharing agreement. A new version replaces the previous one entirely."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    title: str = Field(min_length=3)
    status: AgreementStatus = AgreementStatus.ACTIVE
    legal_basis: LegalBasis
    providers: tuple[str, ...] = Field(min_length=1, description="Municipalities that may provide.")
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    identifying: bool = Field(
        default=False,
        description="May identifying fields be shared? If not, recipients get only their own pseudonym.",
    )
    free_text_without_identity: bool = Field(
        default=False,
        description=(
            "Free text (the summary, and attributes such as sector, indicators, offence_type or"
            " care_refused) is typed by people and can name or describe anyone, so it counts as"
            " identifying. True records that the providers undertake to write it without names,"
            " addresses or other details that identify a person, so an agreement that is not"
            " identifying may share it. Has no effect on an identifying agreement."
        ),
    )
    requires_subject_consent: bool = Field(
        default=False, description="Share only when the subject consented (for this agreement or category)."
    )
    objection_blocks: bool = Field(
        default=True,
        description="An objection (AVG art. 21) stops sharing; false where the legal basis overrides it.",
    )
    valid_from: date
    valid_until: date | None = None
    retention_days: int = Field(ge=1, le=3650)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until lies before valid_from")
        problems = self.identity_problems()
        if problems:
            raise PydanticCustomError(
                IDENTIFYING_FIELD_ERROR,
                "{summary}",
                {"summary": "; ".join(message for _, message in problems), "fields": problems},
            )
        partners = [recipient.partner for recipient in self.recipients]
        if len(set(partners)) != len(partners):
            raise ValueError("a partner is named twice among the recipients")
        return self

    def identity_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(location, message) for every identifying field a recipient would get although the
        agreement is not identifying; free text counts unless the agreement allows it."""
        if self.identifying:
            return []
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for r, recipient in enumerate(self.recipients):
            for f, field in enumerate(recipient.fields):
                message = _identity_problem(recipient.partner, field, self.free_text_without_identity)
                if message:
                    problems.append((("recipients", r, "fields", f), message))
        return problems

    def recipient(self, partner: str) -> Recipient | None:
        return next((r for r in self.recipients if r.partner == partner), None)

    def valid_at(self, moment: datetime) -> bool:
        day = moment.date()
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    @property
    def label(self) -> str:
        return f"agreement {self.id} v{self.version}"


def _identity_problem(partner: str, field: str, free_text_allowed: bool) -> str | None:
    if field == "attributes":
        identifying = ", ".join(sorted(f for f in IDENTIFYING_FIELDS if f.startswith("attributes.")))
        return (
            f"recipient {partner} gets attributes, but the agreement is not identifying: attributes"
            f" includes identifying ones ({identifying}). Name the attributes the recipient needs one"
            " by one, or set `identifying: true`"
        )
    if field in IDENTIFYING_FIELDS:
        return (
            f"recipient {partner} gets {field}, but the agreement is not identifying: {field}"
            " identifies a person. Only an agreement with `identifying: true` may share it"
        )
    if field in FREE_TEXT_FIELDS and not free_text_allowed:
        return (
            f"recipient {partner} gets {field}, but the agreement is not identifying: {field} is free"
            " text, which can name or describe a person. Set"
            f" `{FREE_TEXT_ALLOWANCE}: true` if the providers undertake to write it without"
            " identifying details, or `identifying: true`"
        )
    return None


class AgreementPublished(Event):
    """A version of an agreement came into force (or was suspended): the whole agreement."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.agreement.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    agreement: Agreement
    published_by: str = Field(description="The organisation that made the change (or `configuration`).")
    published_at: datetime
    proposed_by: str | None = Field(default=None, description="Who made the change: organisation/person.")
    approved_by: str | None = Field(
        default=None, description="The second person (a privacy officer) who approved a widening change."
    )


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class AgreementProposed(Event):
    """A new version that widens what anyone receives, waiting for a privacy officer of a
    providing municipality to approve it (four eyes). Compacted by agreement id: the latest
    proposal per agreement, its status updated when it is decided."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.agreement.proposal.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    agreement: Agreement
    organisation: str = Field(description="The providing municipality that proposed it.")
    proposed_by: str = Field(description="organisation/person of the agreement administrator.")
    proposed_at: datetime
    widens: tuple[str, ...] = Field(min_length=1, description="Why it needs approval: what it widens.")
    status: ProposalStatus = ProposalStatus.PENDING
    decided_by: str | None = Field(default=None, description="organisation/person who approved or rejected.")
    decided_at: datetime | None = None


class DirectiveKind(StrEnum):
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OBJECTION = "objection"  # AVG art. 21
    OBJECTION_WITHDRAWN = "objection_withdrawn"


class DirectiveScope(BaseModel):
    """What a directive covers: one agreement, or one category of signals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agreement_id: str | None = None
    category: Category | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.agreement_id is None) == (self.category is None):
            raise ValueError("a directive's scope names exactly one of agreement_id or category")
        return self

    def covers(self, agreement_id: str, category: Category) -> bool:
        return self.agreement_id == agreement_id or self.category == category


class Directive(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    directive_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    kind: DirectiveKind
    scope: DirectiveScope
    recorded_at: datetime
    recorded_by: str = Field(description="The organisation that recorded it.")
    actor: str | None = Field(default=None, description="organisation/person who recorded it.")


class SubjectDirectives(Event):
    """Every directive of one subject, oldest first: the compacted topic keeps the latest set."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.directives.v1"

    subject_pseudonym: str = Field(pattern=r"^[0-9a-f]{32}$")
    directives: tuple[Directive, ...]


def standing(
    directives: tuple[Directive, ...], agreement_id: str, category: Category
) -> tuple[Literal["given", "withdrawn", "none"], bool]:
    """(consent, objection in force) for one agreement and category: the latest word counts."""
    consent: Literal["given", "withdrawn", "none"] = "none"
    objection = False
    for directive in sorted(directives, key=lambda d: d.recorded_at):
        if not directive.scope.covers(agreement_id, category):
            continue
        if directive.kind is DirectiveKind.CONSENT_GIVEN:
            consent = "given"
        elif directive.kind is DirectiveKind.CONSENT_WITHDRAWN:
            consent = "withdrawn"
        elif directive.kind is DirectiveKind.OBJECTION:
            objection = True
        else:
            objection = False
    return consent, objection
