"""The events safety-chain publishes, one model per versioned CloudEvents type."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.signal import Category, Classification, Severity
from shared.envelope import TYPE_PREFIX


class Event(BaseModel):
    """Base of every event value: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: Literal[1] = 1

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class SealedPayload(BaseModel):
    """Ciphertext for one recipient; layout in shared.crypto.sealing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["X25519-HKDF-SHA256-AES256GCM"] = "X25519-HKDF-SHA256-AES256GCM"
    recipient: str = Field(description="Organisation or service whose X25519 key opens it.")
    ciphertext: str = Field(description="base64url of the sealed bytes.")


class SignalAccepted(Event):
    """A validated signal; the subject is a pseudonym and the personal payload is sealed."""

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.accepted.v1"

    signal_id: uuid.UUID
    municipality: str
    category: Category
    severity: Severity
    occurred_at: datetime
    purpose: str
    legal_basis: str | None
    retention_days: int | None
    classification: Classification
    subject_kind: Literal["person"]
    subject_pseudonym: str
    accepted_at: datetime
    personal: SealedPayload = Field(description="Subject identity, summary and attributes.")


class RejectionReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    WRONG_CONTENT_TYPE = "wrong_content_type"
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_FIELD = "missing_field"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_MUNICIPALITY = "unknown_municipality"
    INVALID_BSN = "invalid_bsn"
    FUTURE_TIME = "future_time"
    OVERSIZED = "oversized"
    MALFORMED_EVENT = "malformed_event"  # an upstream record consent could not read or open


class FieldError(BaseModel):
    """One thing wrong with a submission. Never carries the offending value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: RejectionReason
    location: str = Field(description="Dotted path of the field, e.g. subject.bsn.")
    message: str


class SignalRejected(Event):
    """A dead letter: why a submission was refused, with no personal data."""

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.rejected.v1"

    rejection_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    signal_id: uuid.UUID | None = Field(description="When the submission carried a valid one.")
    municipality: str | None = Field(description="When the submission named a known one.")
    channel: Literal["http", "kafka", "consent"]
    reason: RejectionReason = Field(description="The first error's reason.")
    errors: tuple[FieldError, ...]
    rejected_at: datetime


class Decision(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class ExchangeDecided(Event):
    """Consent's verdict for one (signal, candidate recipient)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "exchange.decided.v1"

    signal_id: uuid.UUID
    municipality: str
    recipient: str
    category: Category
    purpose: str
    subject_pseudonym: str
    decision: Decision
    reasons: tuple[str, ...]
    agreement_id: str | None
    agreement_version: int | None
    legal_basis: str | None
    fields: tuple[str, ...] = Field(description="Names of the fields shared; never values.")
    decided_at: datetime


class SignalDelivered(Event):
    """A permitted signal on the recipient's own topic, minimised and sealed to its key."""

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.delivered.v1"

    signal_id: uuid.UUID
    municipality: str
    recipient: str
    agreement_id: str
    agreement_version: int
    purpose: str
    legal_basis: str
    retention_days: int
    fields: tuple[str, ...]
    partner_pseudonym: str = Field(description="Subject pseudonym specific to this recipient.")
    payload: SealedPayload
    delivered_at: datetime
