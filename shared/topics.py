"""Every Kafka topic of safety-chain, declared once.

Services, the local broker set-up, docker-compose and the Kubernetes manifests all take their
topic names, partition counts and configs from here. A deployment-wide prefix (settings
`topic_prefix`) lets several environments, or several test runs, share one cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from shared.contracts.agreements import AgreementProposed, AgreementPublished, SubjectDirectives
from shared.contracts.events import (
    SIGNAL_SUBMITTED_TYPE,
    AuditRead,
    ErasureForwarded,
    ErasureNotice,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectDataKey,
    SubjectErased,
    SubjectRecipients,
)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its unprefixed name, how it is keyed, partitions and broker configs."""

    name: str
    key: str
    partitions: int = 3
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""
    event_types: tuple[str, ...] = ()  # the CloudEvents types that belong on it, nothing else

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
    event_types=(SIGNAL_SUBMITTED_TYPE,),
)
SIGNALS_ACCEPTED = TopicSpec(
    "signals.accepted.v1",
    key="subject pseudonym",
    description="Validated, pseudonymised signals; personal payload encrypted.",
    event_types=(SignalAccepted.event_type,),
)
SIGNALS_REJECTED = TopicSpec(
    "signals.rejected.v1",
    key="signal id",
    description="Dead letters: reason codes only, never personal data.",
    event_types=(SignalRejected.event_type,),
)
EXCHANGE_DECISIONS = TopicSpec(
    "exchange.decisions.v1",
    key="signal id",
    description="One permit/deny per (signal, candidate recipient), with reasons.",
    event_types=(ExchangeDecided.event_type, ErasureForwarded.event_type),
)
EXCHANGE_RECEIPTS = TopicSpec(
    "exchange.receipts.v1",
    key="signal id",
    description="Signed receipts from partners: delivered and opened.",
    event_types=(ExchangeReceipt.event_type,),
)
CONSENT_AGREEMENTS = TopicSpec(
    "consent.agreements.v1",
    key="agreement id",
    partitions=1,
    config=_COMPACTED,
    description="Sharing agreements (convenanten) and their versions.",
    event_types=(AgreementPublished.event_type,),
)
CONSENT_DIRECTIVES = TopicSpec(
    "consent.directives.v1",
    key="subject pseudonym",
    config=_COMPACTED,
    description="Subject consent given or withdrawn, and objections.",
    event_types=(SubjectDirectives.event_type,),
)
CONSENT_PROPOSALS = TopicSpec(
    "consent.proposals.v1",
    key="agreement id",
    partitions=1,
    config=_COMPACTED,
    description="Agreement changes that widen sharing, waiting for a privacy officer's approval.",
    event_types=(AgreementProposed.event_type,),
)
SUBJECT_RECIPIENTS = TopicSpec(
    "consent.recipients.v1",
    key="subject pseudonym",
    config=_COMPACTED,
    description="Which partners received data about a subject: whom an erasure notice must reach.",
    event_types=(SubjectRecipients.event_type,),
)
SUBJECTS_ERASURE = TopicSpec(
    "subjects.erasure.v1",
    key="subject pseudonym",
    description="Crypto-shredding: the subject's data key was destroyed.",
    event_types=(SubjectErased.event_type,),
)
SUBJECTS_KEYS = TopicSpec(
    "subjects.keys.v1",
    key="subject pseudonym",
    # Compacted so a destroyed key's tombstone soon replaces every earlier copy: rolling a
    # segment each hour and compacting within a day bounds how long a shredded key survives.
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": str(24 * 3600 * 1000),
        "segment.ms": str(3600 * 1000),
        "delete.retention.ms": str(3600 * 1000),
    },
    description="Subject data keys sealed to the consent service; tombstone on erasure.",
    event_types=(SubjectDataKey.event_type,),
)
AUDIT_READS = TopicSpec(
    "audit.reads.v1",
    key="reader organisation",
    description="Who read the audit log, with which filter and how many records: reading is logged too.",
    event_types=(AuditRead.event_type,),
)
AUDIT_CHECKPOINTS = TopicSpec(
    "audit.checkpoints.v1",
    key="log id",
    partitions=1,
    description="Signed tree heads of the audit log.",
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

AUDITED_TOPICS: Final[tuple[TopicSpec, ...]] = (
    SIGNALS_ACCEPTED,
    SIGNALS_REJECTED,
    EXCHANGE_DECISIONS,
    EXCHANGE_RECEIPTS,
    CONSENT_AGREEMENTS,
    CONSENT_DIRECTIVES,
    CONSENT_PROPOSALS,
    SUBJECTS_ERASURE,
    AUDIT_READS,
)
"""The central topics the audit log covers, besides every partner topic. Not the intake (its
values are sealed to signals; every outcome reaches audit as accepted or rejected) and not
subjects.keys.v1 (data keys are none of its business)."""

PARTNER_TOPIC_TEMPLATE: Final = "partner.{partner_id}.signals.v1"
_PARTNER_TOPIC_PATTERN: Final = r"partner\.[a-z0-9-]+\.signals\.v1"


def partner_topic(partner_id: str) -> TopicSpec:
    """The topic only `partner_id` may read: minimised deliveries encrypted to it."""
    return TopicSpec(
        PARTNER_TOPIC_TEMPLATE.format(partner_id=partner_id),
        key="partner pseudonym",
        description=f"Deliveries for {partner_id}, minimised and encrypted to its key.",
        event_types=(SignalDelivered.event_type, ErasureNotice.event_type),
    )


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
