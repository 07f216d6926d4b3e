"""The catalogue: one row per event type the audit log keeps.

Each row says what the fact means, how the log reads it (statements.py), what it is in a
signal's and a subject's story (`Role`: how the timeline, the subject access report and the
dashboard place it), whether it is the partner's own side of an exchange, and how LDV and VWL
exports name and attribute it. Who may write it is not in the row: it is derived from the topic
table (shared/contracts/topics.py), from the producers of every topic audit reads that carries
the type (`writers`). A new event type on an audited topic needs a row here
(tests/unit/test_audit_catalogue.py names any that lacks one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from services.audit.log import statements
from services.audit.log.statements import Statement
from shared.contracts.agreements import AgreementProposed, AgreementPublished, SubjectDirectives
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import (
    AuditFailover,
    AuditRead,
    ErasureForwarded,
    ErasureNotice,
    Event,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectErased,
)
from shared.contracts.topics import AUDITED_TOPICS, SERVICES, TopicSpec, partner_topic

E = TypeVar("E", bound=Event)


class Role(StrEnum):
    """What a fact is in the story of one signal and of its subject."""

    SIGNAL = "signal"  # a signal about the subject passed intake
    REFUSAL = "refusal"  # a submission, or a record consent could not trust, was refused
    DECISION = "decision"  # consent's permit or deny for one candidate recipient
    DELIVERY = "delivery"  # the permitted signal, minimised, as it reached the partner
    RECEIPT = "receipt"  # the partner's answer to a delivery or an erasure notice
    DIRECTIVE = "directive"  # the subject's consent or objection
    ERASURE = "erasure"  # the subject's data key destroyed at the source
    NOTICE_SENT = "notice sent"  # consent sent an erasure notice to one partner
    NOTICE = "notice"  # that erasure notice, as the partner got it
    AGREEMENT = "agreement"  # a version or a proposed change of a sharing agreement
    READ = "read"  # someone read the audit log
    SEQUENCER = "sequencer"  # another replica took over writing the log


class CalledBy(StrEnum):
    """Whose call made the writer write the record: another organisation's (LDV's foreign
    operation) or nobody's, when the platform followed its own records."""

    NOBODY = "nobody"
    SOURCE = "source"  # the organisation the record names as its source asked for it
    CONSENT = "consent"  # a receipt answers consent's delivery or notice


@dataclass(frozen=True)
class Names:
    """The action in words, in Dutch like the standards: VWL's actieNaam, handelingNaam and
    verwerkingNaam; LDV's `name` is the action."""

    action: str
    handling: str
    processing: str


EXCHANGE: Final = "Signaaluitwisseling"
"""The processing of the exchange itself: VWL names it with the signal's category."""


@dataclass(frozen=True)
class Writers:
    """Who may sign a record of one type: these services, and where an organisation produces the
    topic (a partner's receipts), that organisation in its own name only: the one the record
    names as its source."""

    services: frozenset[str]
    in_own_name: bool = False

    def of(self, source: str | None) -> frozenset[str]:
        """Who may have written a record whose value names `source`."""
        if self.in_own_name and source:
            return self.services | {source}
        return self.services


PARTNER_TOPIC: Final = partner_topic("any-partner")
"""Every partner's topic carries the same messages from the same producers."""

READ_BY_AUDIT: Final[tuple[TopicSpec, ...]] = (*AUDITED_TOPICS, PARTNER_TOPIC)


@functools.cache
def writers(event_type: str) -> Writers:
    """Who may write `event_type`: the producers of every audited topic that carries it."""
    producers = {
        party for spec in READ_BY_AUDIT if event_type in spec.event_types for party in spec.producers
    }
    return Writers(
        services=frozenset(str(party) for party in producers if party in SERVICES),
        in_own_name=any(party not in SERVICES for party in producers),
    )


@dataclass(frozen=True)
class Row(Generic[E]):
    """One event type: its contract, what it means, how the log reads it and how views show it."""

    event: type[E]
    meaning: str
    states: Callable[[E], Statement]
    role: Role
    names: Names
    called_by: CalledBy = CalledBy.NOBODY
    partner_side: bool = False
    """Reached a partner, or is its answer: it names the partner's own pseudonym and delivery
    id, and it is all a partner's officer reads of the log (services.audit.log.query)."""
    provides_data: bool = False
    """It provides data to its target (VWL's afnemer, "bij levering van gegevens")."""
    under_agreement: bool = False
    """Its processing activity is the agreement version it names (else the platform's own)."""

    @property
    def event_type(self) -> str:
        return self.event.event_type

    @property
    def writers(self) -> Writers:
        return writers(self.event_type)

    def read(self, value: bytes) -> Statement:
        """What a record's value states (a ValueError when it is not this event)."""
        return self.states(self.event.model_validate_json(value))


ROWS: Final[tuple[Row[Any], ...]] = (
    Row(
        SignalAccepted,
        "A municipality's signal passed intake: the subject is pseudonymised, the payload sealed.",
        statements.accepted,
        Role.SIGNAL,
        Names("Signaal geaccepteerd", "Intake", EXCHANGE),
        called_by=CalledBy.SOURCE,  # the municipality submitted it
    ),
    Row(
        SignalRejected,
        "A submission was refused at intake, or consent refused a record it could not trust.",
        statements.rejected,
        Role.REFUSAL,
        Names("Signaal geweigerd", "Intake", EXCHANGE),
        called_by=CalledBy.SOURCE,
    ),
    Row(
        ExchangeDecided,
        "Consent permitted or denied sharing one signal with one candidate recipient.",
        statements.decided,
        Role.DECISION,
        Names("Besluit over delen", "Besluit", EXCHANGE),
        under_agreement=True,
    ),
    Row(
        SignalDelivered,
        "A permitted signal, minimised to the agreed fields, was delivered to the partner.",
        statements.delivered,
        Role.DELIVERY,
        Names("Signaal geleverd", "Levering", EXCHANGE),
        partner_side=True,
        provides_data=True,
        under_agreement=True,
    ),
    Row(
        ExchangeReceipt,
        "A partner confirmed it opened, refused or erased what it received.",
        statements.receipt,
        Role.RECEIPT,
        Names("Ontvangstbevestiging", "Ontvangst", EXCHANGE),
        called_by=CalledBy.CONSENT,
        partner_side=True,
        under_agreement=True,
    ),
    Row(
        SubjectErased,
        "The subject's data key was destroyed at an organisation's request: its payloads are unreadable.",
        statements.erased,
        Role.ERASURE,
        Names("Gegevens gewist", "Wissen", "Wissen op verzoek"),
        called_by=CalledBy.SOURCE,  # an organisation asked for the erasure
    ),
    Row(
        ErasureForwarded,
        "Consent sent an erasure notice to one partner that received data about the subject.",
        statements.forwarded,
        Role.NOTICE_SENT,
        Names("Wisverzoek doorgezet", "Wissen", "Wissen op verzoek"),
    ),
    Row(
        ErasureNotice,
        "The erasure notice as the partner received it, under its own pseudonym.",
        statements.notice,
        Role.NOTICE,
        Names("Wisverzoek aan ontvanger", "Wissen", "Wissen op verzoek"),
        partner_side=True,
        provides_data=True,
    ),
    Row(
        AgreementPublished,
        "A version of a sharing agreement came into force, or was suspended or revoked.",
        statements.published,
        Role.AGREEMENT,
        Names("Convenant gepubliceerd", "Convenantbeheer", "Convenantbeheer"),
        called_by=CalledBy.SOURCE,  # an organisation published the change
    ),
    Row(
        AgreementProposed,
        "A change that widens an agreement was proposed, approved, rejected or withdrawn.",
        statements.proposed,
        Role.AGREEMENT,
        Names("Convenantwijziging voorgesteld", "Convenantbeheer", "Convenantbeheer"),
        called_by=CalledBy.SOURCE,  # an organisation proposed it
    ),
    Row(
        SubjectDirectives,
        "The subject's consent or objection was recorded or withdrawn.",
        statements.directives,
        Role.DIRECTIVE,
        Names("Toestemming of bezwaar vastgelegd", "Voorkeuren", "Toestemming en bezwaar"),
        called_by=CalledBy.SOURCE,  # an organisation recorded it
    ),
    Row(
        AuditRead,
        "Someone read the audit log: who, with which filter, how many records.",
        statements.read,
        Role.READ,
        Names("Auditlog ingezien", "Inzage", "Verantwoording"),
        called_by=CalledBy.SOURCE,  # an organisation read the log
    ),
    Row(
        AuditFailover,
        "Another replica of the audit service took over writing the log: from whom, the new"
        " epoch and the number of records it continued from.",
        statements.failover,
        Role.SEQUENCER,
        Names("Schrijven van de auditlog overgenomen", "Overname", "Verantwoording"),
    ),
)

CATALOGUE: Final[dict[str, Row[Any]]] = {row.event_type: row for row in ROWS}
"""The rows by CloudEvents type."""

UNREADABLE_TYPE: Final = TYPE_PREFIX + "audit.unreadable.v1"
"""The type the log gives a record it could not read (services.audit.log.facts.unreadable_fact):
no event of anyone's, so no row; the audit service wrote it."""
UNREADABLE_NAMES: Final = Names("Onleesbaar record vastgelegd", "Verantwoording", "Verantwoording")


def row_of(event_type: str) -> Row[Any] | None:
    return CATALOGUE.get(event_type)


def role_of(event_type: str) -> Role | None:
    row = CATALOGUE.get(event_type)
    return row.role if row else None


RECEIVED_EVENTS: Final = frozenset(row.event_type for row in ROWS if row.partner_side)
"""What reaches a partner, under its own pseudonym and delivery id: its deliveries, its erasure
notices and its own receipts, all a partner's officer reads of the log. Never a decision
(consent decides for every partner, permit or deny), a platform pseudonym or a signal id."""
