"""The audit log's catalogue (services/audit/log/catalogue.py) against the topic table
(shared/contracts/topics.py): a row for every event type audit reads, and who may write each
type derived from the producers of the topics that carry it, never typed again."""

from __future__ import annotations

from services.audit.log.catalogue import CATALOGUE, RECEIVED_EVENTS, ROWS, Writers, writers
from shared.contracts.agreements import AgreementProposed, AgreementPublished, SubjectDirectives
from shared.contracts.events import (
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
from shared.contracts.topics import AUDIT_CHECKPOINTS, CENTRAL_TOPICS, Party, TopicSpec, partner_topic

PARTNER = "veilig-thuis-amsterdam"


def read_by_audit() -> list[TopicSpec]:
    """Every topic audit logs, as the table says: the central ones it consumes (its own
    checkpoints aside: what it verifies against, not facts) and a partner's topic."""
    central = [
        spec for spec in CENTRAL_TOPICS if Party.AUDIT in spec.consumers and spec is not AUDIT_CHECKPOINTS
    ]
    return [*central, partner_topic(PARTNER)]


def test_every_event_type_on_a_topic_audit_reads_has_a_row_and_every_row_such_a_type() -> None:
    on_audited_topics = {event_type for spec in read_by_audit() for event_type in spec.event_types}
    assert on_audited_topics - CATALOGUE.keys() == set(), "an event type audit reads has no row"
    assert CATALOGUE.keys() - on_audited_topics == set(), "a row for a type audit never reads"
    assert len(CATALOGUE) == len(ROWS), "two rows for one type"


def test_who_may_write_each_type_is_derived_from_the_producers_of_the_topics_that_carry_it() -> None:
    for row in ROWS:
        producers = {
            party
            for spec in read_by_audit()
            if row.event_type in spec.event_types
            for party in spec.producers
        }
        organisations = {Party.MUNICIPALITY, Party.PARTNER}
        expected = Writers(
            services=frozenset(party.value for party in producers - organisations),
            in_own_name=bool(producers & organisations),
        )
        assert row.writers == expected == writers(row.event_type), row.event_type


def test_the_derived_writers_are_who_the_services_code_says_writes_each_type() -> None:
    """What the hand-kept table said before it was derived (and what the code that publishes
    each event does): a change to the topic table that widens who may write a type shows here."""
    services: dict[type[Event], frozenset[str]] = {
        SignalAccepted: frozenset({"signals"}),  # services/signals/intake.py
        SignalRejected: frozenset({"signals", "consent"}),  # intake, and consent's dead letters
        ExchangeDecided: frozenset({"consent"}),  # services/consent/enforcement.py
        SignalDelivered: frozenset({"consent"}),
        ErasureForwarded: frozenset({"consent"}),
        ErasureNotice: frozenset({"consent"}),
        AgreementPublished: frozenset({"consent"}),  # services/consent/admin.py, on request
        AgreementProposed: frozenset({"consent"}),
        SubjectDirectives: frozenset({"consent"}),  # services/consent/directives.py, on request
        SubjectErased: frozenset({"signals"}),  # services/signals/erasure.py
        AuditRead: frozenset({"audit"}),  # services/audit/http.py, every read
    }
    for event, expected in services.items():
        derived = CATALOGUE[event.event_type].writers
        assert (derived.services, derived.in_own_name) == (expected, False), event.event_type
        assert derived.of(PARTNER) == expected  # no organisation writes in its own name
    receipt = CATALOGUE[ExchangeReceipt.event_type].writers
    assert receipt.services == frozenset() and receipt.of(PARTNER) == {PARTNER}  # the partner it names


def test_the_partner_side_is_what_travels_on_a_partner_topic_or_a_partner_writes() -> None:
    partners_topic = set(partner_topic(PARTNER).event_types)
    written_by_partners = {
        event_type
        for spec in read_by_audit()
        if Party.PARTNER in spec.producers
        for event_type in spec.event_types
    }
    assert partners_topic | written_by_partners == RECEIVED_EVENTS
    assert {row.event_type for row in ROWS if row.provides_data} == partners_topic
