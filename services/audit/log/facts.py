"""Turn one Kafka record into one audit fact: metadata only, never payload values.

A fact records who (source, target), what (event type, category, fields *names*), why
(purpose, legal basis, agreement, decision and reasons), about whom (subject pseudonym) and
where it came from on Kafka (topic, partition, offset: also the idempotency key).

What each event type states, and who may write it, is its row in the catalogue
(catalogue.py). Every record is checked against the key of the party that must have written it
(a receipt against the partner it names): its `ce_source` (urn:nld:oin:<OIN>:systeem:<name>,
mapped to the organisation through the registry) must name one of those writers and that
writer's key must have signed the value and every ce_ header (shared.contracts.crypto.signing).
A source that is malformed or names no registered organisation is forged, like an unknown
signer. A record that fails is logged with the decision `forged` (`receipt-forged` for
receipts) and the decision it claimed in its reasons, never as the fact it claims to be; one
whose writer's key is not configured here is `unverifiable` (`receipt-unverifiable`). A record
whose envelope or value cannot be read at all is `unreadable` (unreadable_fact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict

from services.audit.log.catalogue import UNREADABLE_TYPE, Role, Row, row_of
from services.audit.log.flags import FlagCode, flag
from services.audit.log.statements import Statement
from shared.contracts.envelope import ENVELOPE_PROBLEM, Envelope, Headers
from shared.contracts.topics import event_types_on

if TYPE_CHECKING:
    from services.audit.log.record import AuditRecord


class AuditFact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    event_id: str
    event_time: datetime
    source: str
    target: str | None = None
    signal_id: str | None = None
    subject_pseudonym: str | None = None
    category: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    fields: tuple[str, ...] = ()
    delivery_id: str | None = None  # a partner's own id of a delivery or erasure notice
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    confidential_until: date | None = None  # withheld from the citizen's access report until then
    correlation_id: str
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int


FLAGGED_DECISIONS: Final = frozenset(
    {"forged", "unverifiable", "unreadable", "receipt-forged", "receipt-unverifiable"}
)
"""The decisions the log gives a record it could not believe (`_signature_verdict`,
`unreadable_fact`): kept as evidence, never a fact of what it claims."""


def is_fact(record: AuditFact | AuditRecord) -> bool:
    """Whether an audit record is a verified fact: its writer's key signed it on a topic its type
    belongs on, and it could be read. The one definition every view of the log uses (agreements,
    subject access report, timeline, dashboard, exports); the rest is for the integrity view."""
    return record.decision not in FLAGGED_DECISIONS


class UnreadableRecordError(ValueError):
    """The record is no event the audit log knows; it is logged as such, not dropped."""


SignatureCheck = Callable[[str, bytes, Headers], bool | None]
"""(claimed signer, value, headers) -> whether that organisation's key signed the record;
None when the signer's key is unknown, so the signature cannot be checked."""

SourceLookup = Callable[[str], str | None]
"""A record's ce_source -> the id of the organisation it names (through the registry), or None
when it is malformed or names no registered organisation."""


def _signature_verdict(
    row: Row[Any],
    stated: Statement,
    value: bytes,
    headers: Headers,
    signed_by: SignatureCheck | None,
    claimed: str | None,
    misplaced: str | None = None,
) -> Statement:
    """What the log keeps of the record: what it states when its writer signed it on a topic its
    type belongs on; else flagged, with why and the decision it claimed in its reasons.
    `claimed`: the organisation the record's ce_source names."""
    if misplaced is not None:
        # A genuine record replayed onto another topic is no fact of that topic either.
        problem = misplaced
        genuine: bool | None = False
    elif claimed is None:
        # Not echoed: a source that is not ours may carry anything.
        problem = flag(FlagCode.UNREGISTERED_SOURCE)
        genuine = False
    elif claimed not in row.writers.of(stated.source):
        problem = flag(FlagCode.MAY_NOT_WRITE, organisation=claimed, event_type=row.event_type)
        genuine = False
    else:
        assert signed_by is not None  # called without a check only for a misplaced record
        genuine = signed_by(claimed, value, headers)
        problem = flag(FlagCode.NOT_SIGNED if genuine is False else FlagCode.NO_KEY, organisation=claimed)
    if genuine:
        return stated
    prefix = "receipt-" if row.role is Role.RECEIPT else ""
    return replace(
        stated,
        decision=f"{prefix}forged" if genuine is False else f"{prefix}unverifiable",
        reasons=(problem, flag(FlagCode.CLAIMED, decision=stated.decision or "fact"), *stated.reasons),
    )


def fact_from_record(
    topic: str,
    partition: int,
    offset: int,
    headers: Headers,
    value: bytes,
    signed_by: SignatureCheck | None = None,
    topic_prefix: str = "",
    sources: SourceLookup | None = None,
) -> AuditFact:
    """The fact a record states. With `signed_by` (and `sources`, which maps its ce_source to
    an organisation) its writer is checked; without, only whether its type belongs on `topic`."""
    assert signed_by is None or sources is not None, "a signature check needs the source lookup"
    try:
        envelope = Envelope.from_headers(headers)
    except ValueError as error:  # its message may quote a header the record carried: not kept
        raise UnreadableRecordError(ENVELOPE_PROBLEM) from error
    row = row_of(envelope.type)
    if row is None:
        raise UnreadableRecordError(f"unknown event type {envelope.type!r}")
    try:
        stated = row.read(value)
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise UnreadableRecordError(str(error).splitlines()[0]) from error
    claimed = sources(envelope.source) if sources is not None else None
    misplaced = (
        None
        if envelope.type in event_types_on(topic, topic_prefix)
        else flag(FlagCode.MISPLACED, event_type=envelope.type, topic=topic.removeprefix(topic_prefix))
    )
    kept = (
        _signature_verdict(row, stated, value, headers, signed_by, claimed, misplaced)
        if signed_by or misplaced
        else stated
    )
    event_time = envelope.time
    if event_time is None:
        if kept is stated:
            raise UnreadableRecordError("the record carries no ce_time")  # every producer writes one
        event_time = datetime.now(UTC)  # a flagged record: when the log saw it
    return AuditFact(
        event_type=envelope.type,
        event_id=envelope.id,
        event_time=event_time,
        correlation_id=envelope.correlation_id,
        kafka_topic=topic,
        kafka_partition=partition,
        kafka_offset=offset,
        **{name: getattr(kept, name) for name in _STATED},  # not asdict: it deep-copies each value
    )


_STATED: Final = tuple(field.name for field in fields(Statement))

_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def _plain_id(headers: Headers) -> str:
    """The record's ce_id when it is one, plain and short (as every producer here writes it);
    else \"unknown\": an unreadable record's header is kept only if it can carry nothing else."""
    values = [value for name, value in headers if name == "ce_id"]
    if len(values) != 1 or not isinstance(values[0], bytes) or not 0 < len(values[0]) <= 64:
        return "unknown"
    text = values[0].decode("ascii", errors="replace")
    return text if set(text) <= _ID_CHARACTERS else "unknown"


def unreadable_fact(topic: str, partition: int, offset: int, headers: Headers, problem: str) -> AuditFact:
    """What the log keeps of a record it cannot read: provenance and the problem, nothing else."""
    return AuditFact(
        event_type=UNREADABLE_TYPE,
        event_id=_plain_id(headers),
        event_time=datetime.now(UTC),
        source="unknown",
        decision="unreadable",
        reasons=(problem[:300],),
        correlation_id="0" * 32,
        kafka_topic=topic,
        kafka_partition=partition,
        kafka_offset=offset,
    )
