"""Every Kafka topic of safety-chain, declared once: the topic table.

Per topic: its name, key, partitions and broker configs; the messages it carries (payload
model, CloudEvents type, headers); who produces it and who consumes it. Everything else is
derived from this table and tested against it: the ACLs of every principal (shared.plumbing.acls), the
Strimzi KafkaTopics and KafkaUsers (deploy/k8s), the AsyncAPI document (shared/plumbing/asyncapi.py),
the event types audit accepts per topic, and the audit service's subscription. A
deployment-wide prefix (settings `topic_prefix`) lets several environments, or several test
runs, share one cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final

from pydantic import BaseModel

from shared.contracts.agreements import AgreementProposed, AgreementPublished, SubjectDirectives
from shared.contracts.events import (
    SIGNAL_SUBMITTED_HEADERS,
    SIGNAL_SUBMITTED_TYPE,
    AuditCheckpoint,
    AuditFailover,
    AuditRead,
    EnvelopeHeaders,
    ErasureForwarded,
    ErasureNotice,
    Event,
    ExchangeDecided,
    ExchangeReceipt,
    SealedPayload,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectDataKey,
    SubjectErased,
    SubjectRecipients,
)


class Party(StrEnum):
    """Who produces or consumes a topic. A service is one principal; MUNICIPALITY and PARTNER
    stand for every organisation of that kind in the registry, each its own principal. On a
    partner topic, PARTNER means only the partner the topic belongs to."""

    MUNICIPALITY = "municipality"
    PARTNER = "partner"
    SIGNALS = "signals"
    CONSENT = "consent"
    AUDIT = "audit"


SERVICES: Final = (Party.SIGNALS, Party.CONSENT, Party.AUDIT)

TRANSACTIONAL: Final = frozenset({Party.SIGNALS, Party.CONSENT})
"""Services that consume-transform-produce in Kafka transactions (shared.plumbing.transactional): their
transactional ids are `<service>-<instance id>`."""


@dataclass(frozen=True)
class Message:
    """One kind of record: its name, payload model, CloudEvents type and headers."""

    name: str
    payload: type[BaseModel]
    summary: str
    notes: str = ""
    headers: EnvelopeHeaders | None = None  # for a value that is no Event; an Event declares its own
    type: str | None = None  # for a value that is no Event; an Event declares its own

    @property
    def ce_type(self) -> str | None:
        if issubclass(self.payload, Event):
            return self.payload.event_type
        return self.type

    @property
    def envelope(self) -> EnvelopeHeaders | None:
        """Which headers the producers write beyond the core (shared.contracts.events); None:
        not modelled yet."""
        if self.headers is not None:
            return self.headers
        if issubclass(self.payload, Event):
            return self.payload.envelope_headers
        return None


SIGNAL_SUBMITTED = Message(
    "SignalSubmitted",
    SealedPayload,
    "A municipality's signal, sealed to the signals service and signed by the municipality.",
    "The ciphertext opens, with the signals service's X25519 key and a context bound to `ce_id`, to"
    " the JSON of a signal submission (docs/schemas/signal.submission.v1.json). The HTTP intake"
    " writes the same record, signed by the signals service on behalf of the municipality it"
    " authenticated (`ce_channel: http`).",
    headers=SIGNAL_SUBMITTED_HEADERS,
    type=SIGNAL_SUBMITTED_TYPE,
)
ACCEPTED = Message(
    "SignalAccepted",
    SignalAccepted,
    "A validated signal: the subject is a pseudonym, the personal payload encrypted with the"
    " subject's data key.",
)
REJECTED = Message(
    "SignalRejected",
    SignalRejected,
    "A dead letter: why a submission (or a record consent could not trust) was refused.",
    "Reason codes only, never personal data and never the offending value.",
)
DECIDED = Message(
    "ExchangeDecided",
    ExchangeDecided,
    "Consent's permit or deny for one (signal, candidate recipient), with its reasons.",
    "Names the fields shared, never their values.",
)
DELIVERED = Message(
    "SignalDelivered",
    SignalDelivered,
    "A permitted signal, minimised to the agreed fields and sealed to the partner's X25519 key.",
    "Its headers repeat the obligations (purpose, legal basis, retention), signed like the value.",
)
DATA_KEY = Message(
    "SubjectDataKey",
    SubjectDataKey,
    "A subject's data key, sealed to the consent service.",
    "A tombstone (a record with no value, its envelope signed by the signals service) under the"
    " same key means the data key was destroyed: the topic is compacted, so the tombstone soon"
    " replaces every earlier copy.",
)
ERASED = Message(
    "SubjectErased",
    SubjectErased,
    "The subject's data key was destroyed: its payloads can no longer be read anywhere.",
)
RECEIPT = Message(
    "ExchangeReceipt",
    ExchangeReceipt,
    "A partner's receipt for one delivery (opened or refused), signed with the partner's Ed25519 key.",
)
AGREEMENT = Message(
    "AgreementPublished",
    AgreementPublished,
    "A version of a sharing agreement came into force or was suspended: the whole agreement.",
)
DIRECTIVE = Message(
    "SubjectDirectives",
    SubjectDirectives,
    "Every directive of one subject (consent given or withdrawn, objection), oldest first.",
)
NOTICE = Message(
    "ErasureNotice",
    ErasureNotice,
    "To a partner that received data about a subject: its data was erased at the source (AVG art."
    " 17 and 19); erase what you hold under this pseudonym and acknowledge with a receipt.",
    "Names only the partner's own pseudonym and notice id.",
)
FORWARDED = Message(
    "ErasureForwarded",
    ErasureForwarded,
    "Inside the platform: consent sent an erasure notice to one partner (links the erasure to the"
    " partner's notice and receipt in the audit log).",
)
RECIPIENTS = Message(
    "SubjectRecipients",
    SubjectRecipients,
    "Which partners received data about a subject: whom an erasure notice must reach.",
    "A tombstone once the erasure was forwarded.",
)
PROPOSAL = Message(
    "AgreementProposed",
    AgreementProposed,
    "A new agreement version that widens what anyone receives, waiting for a privacy officer of a"
    " providing municipality to approve it (four eyes); updated when approved or rejected.",
)
AUDIT_READ = Message(
    "AuditRead",
    AuditRead,
    "Someone read the audit log: who, with which filter, how many records. Written before the"
    " answer leaves the audit service.",
)
AUDIT_FAILOVER = Message(
    "AuditFailover",
    AuditFailover,
    "Another replica of the audit service took over the log (the sequencer's lease): who held it,"
    " who took it, the new epoch and the log's size it continues from.",
    "Names replicas only, never a person. Keyed by the audit service's id.",
)
CHECKPOINT = Message(
    "AuditCheckpoint",
    AuditCheckpoint,
    "The audit log's signed checkpoint (c2sp.org/tlog-checkpoint): its size and root hash, signed"
    " by the audit service; witnesses check each against the last and cosign it.",
    "A copy outside the audit store: verify holds the store to the newest one here.",
)


PROCESSED_PARTITIONS: Final = 12
"""Partitions of a topic that consumer groups share out: at most this many replicas of a
service work on it at once (more stay idle). One subject's accepted signals and erasure notices
land on the same partition number of their topics (both keyed by the pseudonym, with equally
many partitions), so one consent replica handles them, in order. Growing this moves keys between
partitions: a deployment with data creates new topics (docs/adr/0022)."""
STATE_PARTITIONS: Final = 1
"""A compacted state topic is read whole by every replica: partitions add nothing but files."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its unprefixed name, how it is keyed, partitions and broker configs, the
    messages it carries, and who produces and consumes it."""

    name: str
    key: str
    partitions: int = PROCESSED_PARTITIONS
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""
    messages: tuple[Message, ...] = ()
    producers: tuple[Party, ...] = ()
    consumers: tuple[Party, ...] = ()

    @property
    def event_types(self) -> tuple[str, ...]:
        """The CloudEvents types that belong on it, nothing else."""
        return tuple(message.ce_type for message in self.messages if message.ce_type is not None)

    def prefixed(self, prefix: str) -> str:
        return f"{prefix}{self.name}"


_COMPACTED: Final = {"cleanup.policy": "compact"}

SIGNALS_INTAKE = TopicSpec(
    "signals.intake.v1",
    # The broker stamps each record when it appends it: the replay check compares that stamp,
    # which no publisher can set, with the record's signed ce_time.
    config={"message.timestamp.type": "LogAppendTime"},
    key="signal id",
    description="Kafka-native intake; each record signed by its municipality.",
    messages=(SIGNAL_SUBMITTED,),
    producers=(Party.MUNICIPALITY, Party.SIGNALS),  # the HTTP intake writes on the caller's behalf
    consumers=(Party.SIGNALS,),
)
SIGNALS_ACCEPTED = TopicSpec(
    "signals.accepted.v1",
    key="subject pseudonym",
    description="Validated, pseudonymised signals; personal payload encrypted.",
    messages=(ACCEPTED,),
    producers=(Party.SIGNALS,),
    # SIGNALS: each replica follows the verdicts, to answer its HTTP callers (no group)
    consumers=(Party.CONSENT, Party.AUDIT, Party.SIGNALS),
)
SIGNALS_REJECTED = TopicSpec(
    "signals.rejected.v1",
    key="signal id",
    description="Dead letters: reason codes only, never personal data.",
    messages=(REJECTED,),
    producers=(Party.SIGNALS, Party.CONSENT),  # consent dead-letters what it cannot trust
    consumers=(Party.AUDIT, Party.SIGNALS),  # SIGNALS: verdicts, as on signals.accepted.v1
)
EXCHANGE_DECISIONS = TopicSpec(
    "exchange.decisions.v1",
    key="signal id",
    description="One permit/deny per (signal, candidate recipient), with reasons.",
    messages=(DECIDED, FORWARDED),
    producers=(Party.CONSENT,),
    consumers=(Party.AUDIT,),
)
EXCHANGE_RECEIPTS = TopicSpec(
    "exchange.receipts.v1",
    key="signal id",
    description="Signed receipts from partners: delivered and opened.",
    messages=(RECEIPT,),
    producers=(Party.PARTNER,),
    consumers=(Party.AUDIT,),
)
CONSENT_AGREEMENTS = TopicSpec(
    "consent.agreements.v1",
    key="agreement id",
    partitions=STATE_PARTITIONS,
    config=_COMPACTED,
    description="Sharing agreements (convenanten) and their versions.",
    messages=(AGREEMENT,),
    producers=(Party.CONSENT,),
    consumers=(Party.CONSENT, Party.AUDIT),  # consent follows its state back, no group
)
CONSENT_DIRECTIVES = TopicSpec(
    "consent.directives.v1",
    key="subject pseudonym",
    partitions=3,  # a state topic (one would do), created with 3 before: partitions never shrink
    config=_COMPACTED,
    description="Subject consent given or withdrawn, and objections.",
    messages=(DIRECTIVE,),
    producers=(Party.CONSENT,),
    consumers=(Party.CONSENT, Party.AUDIT),
)
CONSENT_PROPOSALS = TopicSpec(
    "consent.proposals.v1",
    key="agreement id",
    partitions=STATE_PARTITIONS,
    config=_COMPACTED,
    description="Agreement changes that widen sharing, waiting for a privacy officer's approval.",
    messages=(PROPOSAL,),
    producers=(Party.CONSENT,),
    consumers=(Party.CONSENT, Party.AUDIT),
)
SUBJECT_RECIPIENTS = TopicSpec(
    "consent.recipients.v1",
    key="subject pseudonym",
    partitions=3,  # a state topic (one would do), created with 3 before: partitions never shrink
    config=_COMPACTED,
    description="Which partners received data about a subject: whom an erasure notice must reach.",
    messages=(RECIPIENTS,),
    producers=(Party.CONSENT,),
    consumers=(Party.CONSENT,),
)
SUBJECTS_ERASURE = TopicSpec(
    "subjects.erasure.v1",
    key="subject pseudonym",
    description="Crypto-shredding: the subject's data key was destroyed.",
    messages=(ERASED,),
    producers=(Party.SIGNALS,),
    consumers=(Party.CONSENT, Party.AUDIT),
)
SUBJECTS_KEYS = TopicSpec(
    "subjects.keys.v1",
    key="subject pseudonym and providing municipality (`<pseudonym>:<municipality>`)",
    partitions=3,  # read whole by consent, like a state topic; partitions never shrink
    # Compacted so a destroyed key's tombstone soon replaces every earlier copy: rolling a
    # segment each hour and compacting within a day bounds how long a shredded key survives.
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": str(24 * 3600 * 1000),
        "segment.ms": str(3600 * 1000),
        "delete.retention.ms": str(3600 * 1000),
    },
    description="Data keys per subject and providing municipality, sealed to the consent service;"
    " a tombstone on erasure.",
    messages=(DATA_KEY,),
    producers=(Party.SIGNALS,),
    consumers=(Party.CONSENT,),  # data keys are none of audit's business
)
AUDIT_READS = TopicSpec(
    "audit.reads.v1",
    key="reader organisation",
    description="Who read the audit log, with which filter and how many records: reading is logged too.",
    # and audit's own other fact, its failovers (keyed by `audit`): no topic of their own
    messages=(AUDIT_READ, AUDIT_FAILOVER),
    producers=(Party.AUDIT,),
    consumers=(Party.AUDIT,),
)
AUDIT_CHECKPOINTS = TopicSpec(
    "audit.checkpoints.v1",
    key="the log's writer (audit)",
    partitions=1,
    description="Signed checkpoints (C2SP tlog-checkpoint) of the audit log, as it grows.",
    messages=(CHECKPOINT,),
    producers=(Party.AUDIT,),
    consumers=(Party.AUDIT,),  # verify holds the store to the checkpoints kept here, outside it
)

CENTRAL_TOPICS: Final[tuple[TopicSpec, ...]] = (
    SIGNALS_INTAKE,
    SIGNALS_ACCEPTED,
    SIGNALS_REJECTED,
    EXCHANGE_DECISIONS,
    EXCHANGE_RECEIPTS,
    CONSENT_AGREEMENTS,
    CONSENT_DIRECTIVES,
    CONSENT_PROPOSALS,
    SUBJECT_RECIPIENTS,
    SUBJECTS_ERASURE,
    SUBJECTS_KEYS,
    AUDIT_READS,
    AUDIT_CHECKPOINTS,
)

AUDITED_TOPICS: Final[tuple[TopicSpec, ...]] = tuple(
    spec for spec in CENTRAL_TOPICS if Party.AUDIT in spec.consumers and spec is not AUDIT_CHECKPOINTS
)
"""The central topics the audit log covers, besides every partner topic. Not the intake (its
values are sealed to signals; every outcome reaches audit as accepted or rejected), not
subjects.keys.v1 (data keys are none of its business) and not its own checkpoints (what it
verifies against, not exchange facts: logging them would grow the log by one record per
checkpoint, forever)."""

PARTNER_TOPIC_TEMPLATE: Final = "partner.{partner_id}.signals.v1"
_PARTNER_TOPIC_PATTERN: Final = r"partner\.[a-z0-9-]+\.signals\.v1"


def partner_topic(partner_id: str) -> TopicSpec:
    """The topic only `partner_id` may read: minimised deliveries encrypted to it."""
    return TopicSpec(
        PARTNER_TOPIC_TEMPLATE.format(partner_id=partner_id),
        key="partner pseudonym",
        description=f"Deliveries for {partner_id}, minimised and encrypted to its key.",
        messages=(DELIVERED, NOTICE),
        producers=(Party.CONSENT,),
        consumers=(Party.PARTNER, Party.AUDIT),  # PARTNER: only the partner it belongs to
    )


class NoTopicError(LookupError):
    """The table has no one topic for an event type (for that recipient)."""


@lru_cache(maxsize=1024)  # the table is constant: every record written asks it (a scan per call)
def topic_carrying(event_type: str, recipient: str | None = None) -> TopicSpec:
    """The one topic that carries records of `event_type`: with a `recipient`, that partner's own
    topic; without, the one central topic whose messages include the type. NoTopicError when the
    named topic does not carry it, or when not exactly one central topic does."""
    if recipient is not None:
        own = partner_topic(recipient)
        if event_type not in own.event_types:
            raise NoTopicError(f"{event_type} does not travel on a partner's own topic")
        return own
    carrying = [spec for spec in CENTRAL_TOPICS if event_type in spec.event_types]
    if len(carrying) == 1:
        return carrying[0]
    if not carrying and event_type in partner_topic("any").event_types:
        raise NoTopicError(f"{event_type} travels on a partner's own topic: name the recipient")
    raise NoTopicError(f"{len(carrying)} central topics carry {event_type}, not one")


def consumed_by(party: Party) -> tuple[TopicSpec, ...]:
    """The central topics `party` reads: what its consumers subscribe to (partner topics aside)."""
    return tuple(spec for spec in CENTRAL_TOPICS if party in spec.consumers)


def is_compacted(spec: TopicSpec) -> bool:
    """A state topic: the latest record per key is the state, followed whole by its readers."""
    return "compact" in spec.config.get("cleanup.policy", "").split(",")


def all_topics(partner_ids: list[str] | tuple[str, ...]) -> list[TopicSpec]:
    return [*CENTRAL_TOPICS, *(partner_topic(partner) for partner in partner_ids)]


def audited_topics_pattern(prefix: str) -> str:
    """A regex matching exactly the (prefixed) topics the audit log covers."""
    names = [re.escape(spec.name) for spec in AUDITED_TOPICS] + [_PARTNER_TOPIC_PATTERN]
    return "^" + re.escape(prefix) + "(" + "|".join(names) + ")$"


def partner_id_of(topic: str, prefix: str = "") -> str | None:
    """The partner a (prefixed) partner topic belongs to, or None for any other topic."""
    match = re.fullmatch(re.escape(prefix) + r"partner\.(?P<id>[a-z0-9-]+)\.signals\.v1", topic)
    return match.group("id") if match else None


def event_types_on(topic: str, prefix: str = "") -> frozenset[str]:
    """The event types that belong on a (prefixed) topic; empty for a topic not declared here."""
    partner = partner_id_of(topic, prefix)
    if partner is not None:
        return frozenset(partner_topic(partner).event_types)
    for spec in CENTRAL_TOPICS:
        if spec.prefixed(prefix) == topic:
            return frozenset(spec.event_types)
    return frozenset()
