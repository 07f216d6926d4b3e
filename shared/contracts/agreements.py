"""Sharing agreements (convenanten) and subject directives: the data consent decides on.

Both are contracts: they travel on compacted topics (consent.agreements.v1 keyed by agreement
id, consent.directives.v1 keyed by subject pseudonym), every consent instance rebuilds its state
from them, and the audit log records every change.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal, Self

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import EnvelopeHeaders, Event
from shared.contracts.reasons import agreement_label
from shared.contracts.signal import Category, Identifying, deliverable_fields

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
    SUSPENDED = "suspended"  # nothing flows; a new version signed by every party resumes it
    REVOKED = "revoked"  # nothing flows, ever again: the agreement takes no new version


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
        return agreement_label(self.id, self.version)

    @property
    def parties(self) -> frozenset[str]:
        """Every organisation that signs this version: its providers and its recipients."""
        return frozenset((*self.providers, *(r.partner for r in self.recipients)))

    @property
    def content_hash(self) -> str:
        """What every party signs: FSC's contract content hash of this version.

        `$1$1$` (format 1, SHA3-512) followed by base64url, unpadded, of SHA3-512 over the
        RFC 8785 canonical JSON of the whole version (id, version, status and every term), so
        any change, however small, is other content that needs its own signatures."""
        canonical = rfc8785.dumps(self.model_dump(mode="json"))
        digest = hashlib.sha3_512(canonical).digest()
        return CONTENT_HASH_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


CONTENT_HASH_PREFIX = "$1$1$"


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


class SignatureType(StrEnum):
    """What a party says of a version's content (FSC's accept and reject)."""

    ACCEPT = "accept"
    REJECT = "reject"


class ApprovalStatement(BaseModel):
    """What a party signs: this content of this version, accepted or rejected, at this time.

    Its RFC 8785 canonical JSON is the payload of a compact JWS (EdDSA) made with the party's
    own Ed25519 key, the one the registry holds for it (shared/contracts/crypto/approvals.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agreement_id: str
    version: int = Field(ge=1)
    contract_content_hash: str = Field(description="Agreement.content_hash of the version signed.")
    organisation: str = Field(description="The party that signs.")
    type: SignatureType
    signed_at: datetime


class PartySignature(BaseModel):
    """One party's signed word on a version, kept with the version so anyone can check it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statement: ApprovalStatement
    signed_by: str = Field(description="organisation/person (or client) who submitted it for the party.")
    jws: str = Field(max_length=4000, description="Compact JWS over the statement, by the party's key.")


class AgreementPublished(Event):
    """A version of an agreement came into force (or was suspended or revoked): the whole
    agreement, and the proof that every party agreed to it.

    `approved` is the version whose exact content every party signed (`signatures`): this
    version itself, or for a narrowing change, a suspension or a revocation (which take effect
    at once) the last version they all signed, which this one may only narrow. Consent believes
    a version only when that holds (services/consent/approvals.py)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.agreement.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    agreement: Agreement
    published_by: str = Field(description="The organisation that made the change (or `configuration`).")
    published_at: datetime
    proposed_by: str | None = Field(default=None, description="Who made the change: organisation/person.")
    approved: Agreement = Field(
        description="The version every party signed (this one, or the one it narrows)."
    )
    signatures: tuple[PartySignature, ...] = Field(
        min_length=1, description="Every party's signed acceptance of `approved`'s content hash."
    )

    @property
    def approvers(self) -> tuple[str, ...]:
        """Who signed for each party, in signing order."""
        return tuple(signature.signed_by for signature in self.signatures)


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # every party signed: the version is in force
    REJECTED = "rejected"  # a party rejected it
    WITHDRAWN = "withdrawn"  # its proposer's municipality withdrew it, and every signature with it


class AgreementProposed(Event):
    """A new version that widens what anyone receives (a new agreement, more fields, another
    party, resuming a suspended one, ...), waiting until every party has signed its exact
    content. Compacted by agreement id: the latest proposal per agreement, updated with each
    signature and when it is decided or withdrawn. One proposal per agreement is pending at a
    time: a new one needs the pending one withdrawn first."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.agreement.proposal.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    agreement: Agreement
    content_hash: str = Field(description="Agreement.content_hash: what the parties sign.")
    organisation: str = Field(description="The providing municipality that proposed it (or `configuration`).")
    proposed_by: str = Field(description="organisation/person of the agreement administrator.")
    proposed_at: datetime
    widens: tuple[str, ...] = Field(min_length=1, description="Why it needs approval: what it widens.")
    signatures: tuple[PartySignature, ...] = Field(
        default=(), description="The parties' signed words so far."
    )
    sequence: int = Field(
        default=0,
        ge=0,
        description="Counts every record consent wrote for this agreement's proposals: a view keeps"
        " the highest, so a replayed earlier record (a pending proposal since rejected or withdrawn)"
        " cannot revive it.",
    )
    status: ProposalStatus = ProposalStatus.PENDING
    decided_by: str | None = Field(
        default=None, description="organisation/person whose signature or withdrawal decided it."
    )
    decided_at: datetime | None = None

    @property
    def accepted_by(self) -> frozenset[str]:
        """The parties that signed an acceptance."""
        return frozenset(
            s.statement.organisation for s in self.signatures if s.statement.type is SignatureType.ACCEPT
        )

    @property
    def awaiting(self) -> frozenset[str]:
        """The parties whose acceptance is still missing."""
        return self.agreement.parties - self.accepted_by


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
    municipality: str | None = Field(
        description="The controller whose data it governs: the municipality that recorded it, for"
        " what it provided. None: recorded by the platform's privacy officer, for every"
        " municipality's data (ADR 0009)."
    )
    recorded_at: datetime
    recorded_by: str = Field(description="The organisation that recorded it.")
    actor: str | None = Field(default=None, description="organisation/person who recorded it.")


class SubjectDirectives(Event):
    """Every directive of one subject, oldest first: the compacted topic keeps the latest set."""

    event_type: ClassVar[str] = TYPE_PREFIX + "consent.directives.v1"

    subject_pseudonym: str = Field(pattern=r"^[0-9a-f]{32}$")
    sequence: int = Field(
        ge=1,
        description="One more than the set it replaces; a view keeps the highest it saw, so a"
        " replayed older set cannot lift a later objection.",
    )
    directives: tuple[Directive, ...]


Consent = Literal["given", "withdrawn", "none"]
CONSENT_KINDS = frozenset({DirectiveKind.CONSENT_GIVEN, DirectiveKind.CONSENT_WITHDRAWN})
OBJECTION_KINDS = frozenset({DirectiveKind.OBJECTION, DirectiveKind.OBJECTION_WITHDRAWN})


def _word(
    directives: list[Directive], kinds: frozenset[DirectiveKind], municipality: str
) -> tuple[DirectiveKind | None, DirectiveKind | None]:
    """(the platform's latest word, the municipality's latest word after it) among `kinds`;
    `directives` oldest first and in scope."""
    platform: Directive | None = None
    own: Directive | None = None
    for directive in directives:
        if directive.kind not in kinds:
            continue
        if directive.municipality is None:
            platform, own = directive, None  # the platform acts for all: earlier words are over
        elif directive.municipality == municipality:
            own = directive
    return (platform.kind if platform else None), (own.kind if own else None)


def standing(
    directives: tuple[Directive, ...], agreement_id: str, category: Category, municipality: str
) -> tuple[Consent, bool]:
    """(consent, objection in force) for what `municipality` provided, under one agreement and
    category (ADR 0009). Only the directives of its controllers count: those `municipality`
    recorded and those the platform's privacy officer recorded for all; another municipality's
    never do. For consent and for objection apart: the platform's latest word overrides every
    earlier word; the municipality's own later word can only add a restriction on top of it
    (withdrawn consent outranks given; an objection holds while either latest word is one), so
    only the platform lifts what the platform recorded."""
    relevant = [
        d for d in sorted(directives, key=lambda d: d.recorded_at) if d.scope.covers(agreement_id, category)
    ]
    consents = _word(relevant, CONSENT_KINDS, municipality)
    objections = _word(relevant, OBJECTION_KINDS, municipality)
    consent: Consent = (
        "withdrawn"
        if DirectiveKind.CONSENT_WITHDRAWN in consents
        else "given"
        if DirectiveKind.CONSENT_GIVEN in consents
        else "none"
    )
    return consent, DirectiveKind.OBJECTION in objections
