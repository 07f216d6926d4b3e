"""The events safety-chain publishes, one model per versioned CloudEvents type."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.signal import Category, Classification, Severity

# --- The headers each event travels with ----------------------------------------------------
# The one place that says which CloudEvents headers beyond the core ones (shared.contracts.envelope) a
# record of each event carries. The producers build their extensions through
# `Event.envelope_extensions` (so they write exactly these), the AsyncAPI document describes
# them (shared/plumbing/asyncapi.py), and every one of them is signed (shared.contracts.crypto.signing signs
# every ce_ header written). Adding a header is one line in the event's `extensions` below.

Presence = Literal["always", "sometimes", "never"]


@dataclass(frozen=True)
class Extension:
    """A CloudEvents extension attribute, sent as the UTF-8 record header `ce_<name>`."""

    description: str
    always: bool = True  # False: only on the records where it applies


@dataclass(frozen=True)
class EnvelopeHeaders:
    """The headers of one event type beyond specversion, id, source, type, time, traceparent
    and content-type (which every record carries): `ce_subject` and the extensions."""

    subject: Presence
    extensions: Mapping[str, Extension] = field(default_factory=dict)

    def values(self, owner: str, **values: str | None) -> dict[str, str]:
        """The extensions of one record: exactly the declared ones (None leaves out one that is
        not `always`). Raises ValueError for an undeclared or a missing one."""
        undeclared = sorted(set(values) - set(self.extensions))
        missing = sorted(
            name
            for name, extension in self.extensions.items()
            if extension.always and values.get(name) is None
        )
        if undeclared or missing:
            raise ValueError(f"{owner}: undeclared extensions {undeclared}, missing extensions {missing}")
        return {name: value for name, value in values.items() if value is not None}


SIGNAL_ID = Extension("The signal id (inside the platform only; never on a partner topic).")
DELIVERY_ID = Extension("The recipient's own id of this delivery; keyed per recipient.")
RECIPIENT = Extension("The chain partner the record is about or for.")
INTAKE_RECORD = Extension(
    "Where the intake record this decides was read (`<topic>:<partition>:<offset>`): the HTTP"
    " intake that wrote it answers its caller from it, on whichever replica it waits.",
    always=False,
)

SIGNAL_SUBMITTED_TYPE = TYPE_PREFIX + "signal.submitted.v1"
SIGNAL_SUBMITTED_HEADERS = EnvelopeHeaders(
    subject="never",
    extensions={
        "signalid": Extension("The signal id; written by the HTTP intake.", always=False),
        "channel": Extension(
            "`http` when the HTTP intake wrote the record on behalf of the caller.", always=False
        ),
    },
)
"""An intake record (signals.intake.v1): its value is no Event but a SealedPayload."""


class Event(BaseModel):
    """Base of every event value: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="always")
    schema_version: Literal[1] = 1

    @classmethod
    def envelope_extensions(cls, **values: str | None) -> dict[str, str]:
        """The ce_ extensions of one record of this event, checked against its declaration."""
        return cls.envelope_headers.values(cls.__name__, **values)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class SealedPayload(BaseModel):
    """Ciphertext for one recipient; layout in shared.contracts.crypto.sealing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["X25519-HKDF-SHA256-AES256GCM"] = "X25519-HKDF-SHA256-AES256GCM"
    recipient: str = Field(description="Organisation or service whose X25519 key opens it.")
    ciphertext: str = Field(description="base64url of the sealed bytes.")


class EncryptedPayload(BaseModel):
    """Personal data encrypted with the data key of its subject and its providing municipality
    (shared.contracts.crypto.datakeys layout; the signal's `municipality` names the provider).

    The data key lives only in the signals service's key store and, sealed to the consent
    service, on the compacted topic subjects.keys.v1. Erasure destroys both: every copy of
    this payload on the central topics becomes unreadable (crypto-shredding). Each municipality
    has its own key per subject, so one municipality's erasure shreds only what it provided
    (ADR 0009).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["AES256GCM-SUBJECT-KEY"] = "AES256GCM-SUBJECT-KEY"
    subject: str = Field(description="Pseudonym of the subject whose data key encrypts it.")
    ciphertext: str = Field(description="base64url of the encrypted bytes.")


class SignalAccepted(Event):
    """A validated signal; the subject is a pseudonym and the personal payload is encrypted."""

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.accepted.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always", extensions={"signalid": SIGNAL_ID, "intakerecord": INTAKE_RECORD}
    )

    signal_id: uuid.UUID
    municipality: str
    category: Category
    severity: Severity
    occurred_at: datetime
    purpose: str
    legal_basis: str | None
    retention_days: int | None
    classification: Classification
    subject_kind: Literal["person", "address", "organisation"]
    subject_pseudonym: str
    publisher: str = Field(description="The authenticated municipality.")
    authenticated_by: Literal["signature", "api-token"]
    accepted_at: datetime
    personal: EncryptedPayload = Field(description="Subject identity, summary and attributes.")


class RejectionReason(StrEnum):
    """Why a submission was refused. Stable codes: partners and dashboards key on them."""

    # The bytes
    MALFORMED_JSON = "malformed_json"
    NOT_UTF8 = "not_utf8"
    WRONG_CONTENT_TYPE = "wrong_content_type"
    OVERSIZED = "oversized"
    NOT_ENCRYPTED = "not_encrypted"  # an intake record's value must be sealed to the signals service
    # The schema
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_MUNICIPALITY = "unknown_municipality"
    INVALID_BSN = "invalid_bsn"
    INVALID_POSTCODE = "invalid_postcode"
    INVALID_KVK = "invalid_kvk"
    SUMMARY_TOO_LONG = "summary_too_long"
    FUTURE_TIME = "future_time"
    # The publisher
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"  # authenticated, but not as a municipality's publisher
    WRONG_PUBLISHER = "wrong_publisher"
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    # Time and repetition
    REPLAY = "replay"
    DUPLICATE = "duplicate"
    SUBJECT_ERASED = "subject_erased"
    # Downstream
    MALFORMED_EVENT = "malformed_event"  # an upstream record consent could not read or open
    PROCESSING_FAILED = "processing_failed"  # a record whose processing kept failing (logged)


class FieldError(BaseModel):
    """One thing wrong with a submission. Never carries the offending value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: RejectionReason
    location: str = Field(description="Dotted path of the field, e.g. subject.bsn.")
    message: str


class SignalRejected(Event):
    """A dead letter: why a submission was refused, with no personal data."""

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.rejected.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="never",
        extensions={
            "signalid": Extension("The signal id, when the submission carried one.", always=False),
            "intakerecord": INTAKE_RECORD,
        },
    )

    rejection_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    signal_id: uuid.UUID | None = Field(description="When the submission carried a valid one.")
    municipality: str | None = Field(description="When the submission named a known one.")
    channel: Literal["http", "kafka", "consent"]
    first_accepted_at: datetime | None = Field(default=None, description="For duplicates: the original.")
    reason: RejectionReason = Field(description="The first error's reason.")
    errors: tuple[FieldError, ...]
    rejected_at: datetime


class Decision(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class ExchangeDecided(Event):
    """Consent's verdict for one (signal, candidate recipient)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "exchange.decided.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always", extensions={"signalid": SIGNAL_ID, "recipient": RECIPIENT}
    )

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
    delivery_id: uuid.UUID | None = Field(
        default=None,
        description="For a permit: the id the recipient knows the delivery by (this record, inside"
        " the platform, is what leads from it back to the signal).",
    )
    confidential_until: date | None = Field(
        default=None,
        description="The agreement marks exchanges with this recipient confidential: withheld from"
        " the citizen's access report until this date (exclusive).",
    )


class SignalDelivered(Event):
    """A permitted signal on the recipient's own topic, minimised and sealed to its key.

    It names no platform-wide identifier: the delivery id, the subject pseudonym and the trace
    id are all specific to the recipient, so two partners cannot join their records.
    """

    event_type: ClassVar[str] = TYPE_PREFIX + "signal.delivered.v1"
    # The obligations travel in (signed) headers too, so a partner can enforce them unopened.
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always",
        extensions={
            "deliveryid": DELIVERY_ID,
            "recipient": RECIPIENT,
            "agreementid": Extension("The agreement the delivery rests on."),
            "agreementversion": Extension("That agreement's version."),
            "purpose": Extension("The only purpose the partner may use the data for."),
            "legalbasis": Extension("The legal basis of the exchange."),
            "retentiondays": Extension("Days after which the partner must delete the data."),
        },
    )

    delivery_id: uuid.UUID = Field(description="This recipient's id of the delivery; keyed per recipient.")
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


class DeliveryProvenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int
    offset: int


class ExchangeReceipt(Event):
    """A partner's signed acknowledgement: a delivery arrived and was opened (or refused), or an
    erasure notice was carried out. It names the delivery or notice by the partner's own id."""

    event_type: ClassVar[str] = TYPE_PREFIX + "exchange.receipt.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="sometimes",
        extensions={
            "deliveryid": Extension("The delivery acknowledged, when the receipt names one.", always=False),
            "noticeid": Extension("The erasure notice acknowledged, when it is one.", always=False),
        },
    )

    receipt_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    delivery_id: uuid.UUID | None = Field(
        default=None, description="The delivery acknowledged; None for a notice or an unreadable record."
    )
    notice_id: uuid.UUID | None = Field(default=None, description="The erasure notice acknowledged.")
    recipient: str
    status: Literal["opened", "refused", "erased"]
    reason: str | None = Field(default=None, description="Why a record was refused.")
    agreement_id: str | None = None
    agreement_version: int | None = None
    partner_pseudonym: str | None = None
    delivery: DeliveryProvenance
    received_at: datetime


def data_key_id(subject_pseudonym: str, municipality: str) -> str:
    """The record key of a data key on subjects.keys.v1: one key per subject and provider."""
    return f"{subject_pseudonym}:{municipality}"


class SubjectDataKey(Event):
    """The data key of what one municipality provided about a subject, sealed to the consent
    service (compacted by `data_key_id`: subject pseudonym and municipality).

    A tombstone (no value) under the same key, signed with ce_subject and ce_municipality
    naming that key, means the data key was destroyed. It is final (ADR 0009): a data key is
    made once and never issued again, so every value under one key carries the same key, and
    none after its tombstone is believed (a replayed genuine record cannot undo an erasure).
    """

    event_type: ClassVar[str] = TYPE_PREFIX + "subject.datakey.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always",
        extensions={"municipality": Extension("The providing municipality whose data the key encrypts.")},
    )

    subject_pseudonym: str
    municipality: str = Field(description="The providing municipality whose data the key encrypts.")
    sealed_key: SealedPayload
    issued_at: datetime


class SubjectErased(Event):
    """Data keys of the subject were destroyed: the payloads they encrypted can no longer be read
    anywhere. A municipality erases what it provided; the platform's privacy officer all."""

    event_type: ClassVar[str] = TYPE_PREFIX + "subject.erased.v1"

    subject_pseudonym: str
    municipality: str | None = Field(
        description="Whose data was erased: the requesting municipality's; None when the platform's"
        " privacy officer erased every municipality's data about the subject."
    )
    requested_by: str = Field(description="The organisation that requested it.")
    actor: str | None = Field(default=None, description="organisation/person who requested it.")
    erased_at: datetime
    had_data_key: bool


ERASURE_LEGAL_BASIS = "AVG art. 17 (recht op gegevenswissing) en art. 19 (kennisgevingsplicht)"


class ErasureNotice(Event):
    """To a partner that received data about a subject: that subject's data was erased at the
    source; erase what you hold under this pseudonym and acknowledge (AVG art. 17 and 19)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "subject.erasure-notice.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always",
        extensions={"noticeid": Extension("The notice's id, keyed per recipient."), "recipient": RECIPIENT},
    )

    notice_id: uuid.UUID = Field(description="This recipient's id of the notice; keyed per recipient.")
    recipient: str
    partner_pseudonym: str = Field(description="The subject, by this recipient's pseudonym of it.")
    municipality: str | None = Field(
        default=None,
        description="Erase what this municipality provided (the `municipality` of its deliveries);"
        " None: everything received about the subject.",
    )
    legal_basis: str = ERASURE_LEGAL_BASIS
    erased_at: datetime


class ErasureForwarded(Event):
    """Inside the platform: consent sent an erasure notice to one partner (the audit log's link
    from the subject's erasure to the partner's notice and receipt)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "subject.erasure-forwarded.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(
        subject="always", extensions={"recipient": RECIPIENT}
    )

    subject_pseudonym: str
    recipient: str
    municipality: str | None = Field(
        default=None, description="Whose data the notice covers; None: every municipality's."
    )
    notice_id: uuid.UUID
    forwarded_at: datetime


class ProvidedTo(BaseModel):
    """What one municipality provided about a subject reached these partners."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str = Field(description="A municipality that signalled the subject.")
    recipients: tuple[str, ...] = Field(description="The partners that received its data, sorted.")


class SubjectRecipients(Event):
    """Consent's memory of a subject (compacted by subject pseudonym): per municipality that
    signalled it (who may exercise rights over its own data), the partners that received that
    municipality's data (whom its erasure must reach). Once an erasure is forwarded its
    municipality leaves the memory (all of them, for the platform's erasure)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "subject.recipients.v1"

    subject_pseudonym: str
    sequence: int = Field(
        ge=1,
        description="One more than the record it replaces; a view keeps the highest it saw, so a"
        " replayed older record changes nothing.",
    )
    provided: tuple[ProvidedTo, ...] = Field(description="Per providing municipality, sorted by it.")

    @property
    def signalled_by(self) -> frozenset[str]:
        return frozenset(entry.municipality for entry in self.provided)

    @property
    def recipients(self) -> frozenset[str]:
        return frozenset(partner for entry in self.provided for partner in entry.recipients)


class AuditRead(Event):
    """Someone read the audit log: who, with which filter, how many records they got. Written
    before the answer leaves the audit service, so no read goes unrecorded."""

    event_type: ClassVar[str] = TYPE_PREFIX + "audit.read.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="sometimes")

    reader: str = Field(description="The reader's organisation.")
    actor: str = Field(description="organisation/person (or client) of the reader.")
    scope: str = Field(description="The organisation whose records the reader may see, or * for all.")
    filter: dict[str, str] = Field(description="The criteria asked for (a subject by its pseudonym).")
    results: int = Field(ge=0)
    read_at: datetime


REPLICA_ID = r"^[A-Za-z0-9._-]{1,100}$"
"""A replica's stable id (SC_INSTANCE_ID, or a StatefulSet pod's name): `audit-1`."""


class AuditFailover(Event):
    """Another replica of the audit service took over the log: the sequencer's lease passed from
    one holder to the next, which continues the same tree after `continued_from` records. Written
    by the new holder before it appends anything, so every change of writer is in the log."""

    event_type: ClassVar[str] = TYPE_PREFIX + "audit.failover.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    previous_holder: str = Field(pattern=REPLICA_ID, description="The replica that held the lease.")
    holder: str = Field(pattern=REPLICA_ID, description="The replica that took it over.")
    epoch: int = Field(ge=2, description="The new holder's lease epoch: one more at every taking.")
    continued_from: int = Field(
        ge=0, description="Records in the log when it took over: its first append follows them."
    )
    taken_at: datetime


class AuditCheckpoint(Event):
    """The audit log committed to its root at one size: a C2SP tlog-checkpoint note signed by the
    audit service. Kept here, outside the audit store, so a rewrite of the store shows."""

    event_type: ClassVar[str] = TYPE_PREFIX + "audit.checkpoint.v1"
    envelope_headers: ClassVar[EnvelopeHeaders] = EnvelopeHeaders(subject="never")

    origin: str = Field(description="The log's origin (its note key name).")
    size: int = Field(ge=1, description="Number of records the checkpoint covers.")
    root_hash: str = Field(description="base64 of the RFC 9162 root hash at that size.")
    note: str = Field(description="The signed checkpoint note, verbatim (c2sp.org/tlog-checkpoint).")
    issued_at: datetime
