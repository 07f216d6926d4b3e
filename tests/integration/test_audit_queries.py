"""What privacy officers ask of the log, on every store (memory, SQLite, PostgreSQL): search
with every criterion, keyset pages, scope, and the subject access report (citizen and officer)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.audit.log.catalogue import RECEIVED_EVENTS
from services.audit.log.facts import FLAGGED_DECISIONS, AuditFact
from services.audit.log.query import Page, ReaderScope, RecordQuery, matches, paged
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore, every_page
from services.audit.queries.exports.confidentiality import Vertrouwelijkheid
from services.audit.queries.report import Version, build_report
from services.audit.queries.search import (
    NOT_RECEIVED,
    SearchCriteria,
    SearchRequest,
    SubjectLookup,
    deliveries_confidential_until,
    page_of,
    split_page,
    to_query,
)
from shared.contracts.events import ExchangeDecided, ExchangeReceipt, SignalAccepted, SignalDelivered
from shared.plumbing.policy import ALL_RECORDS

LOOKUP = SubjectLookup(bytes(range(32)))
BSN = "999990019"
SUBJECT = LOOKUP.pseudonym(SecretStr(BSN))
OTHER = LOOKUP.pseudonym(SecretStr("999990020"))  # not a valid BSN, but a pseudonym all the same
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 29)
VT, POLICE, OM = "veilig-thuis-amsterdam", "politie-eenheid-amsterdam", "om-arrondissement-amsterdam"
_offsets = itertools.count()


def fact(minutes: int, event_type: str, source: str, **details: Any) -> AuditFact:
    return AuditFact(
        event_type=event_type,
        event_id=str(uuid.uuid4()),
        event_time=START + timedelta(minutes=minutes),
        source=source,
        correlation_id=details.pop("trace", "c" * 32),
        kafka_topic="t",
        kafka_partition=0,
        kafka_offset=next(_offsets),
        **details,
    )


def exchange(
    minutes: int,
    municipality: str,
    recipient: str,
    subject: str,
    *,
    permit: bool = True,
    confidential_until: date | None = None,
    receipt: str | None = "opened",
    signal: str | None = None,
) -> list[AuditFact]:
    """One signal's path to one recipient: accepted, decided, delivered, receipt."""
    signal = signal or str(uuid.uuid4())
    delivery = str(uuid.uuid4()) if permit else None
    common = {"signal_id": signal, "category": "huiselijk_geweld", "purpose": "veiligheid_huiselijk_geweld"}
    facts = [
        fact(minutes, SignalAccepted.event_type, municipality, subject_pseudonym=subject, **common),
        fact(
            minutes + 1,
            ExchangeDecided.event_type,
            municipality,
            target=recipient,
            subject_pseudonym=subject,
            agreement_id="hg",
            agreement_version=1,
            legal_basis="Wmo 2015, art. 5.2.6",
            fields=("category", "subject.name") if permit else (),
            decision="permit" if permit else "deny",
            reasons=("hg v1 permits",) if permit else ("subject objected",),
            delivery_id=delivery,
            confidential_until=confidential_until,
            **common,
        ),
    ]
    if permit:
        partner_side = {"delivery_id": delivery, "subject_pseudonym": "d" * 32}
        facts.append(
            fact(
                minutes + 2,
                SignalDelivered.event_type,
                municipality,
                target=recipient,
                decision="delivered",
                **partner_side,
            )
        )
        if receipt:
            facts.append(
                fact(
                    minutes + 3,
                    ExchangeReceipt.event_type,
                    recipient,
                    target="consent",
                    decision=f"receipt-{receipt}",
                    **partner_side,
                )
            )
    return facts


@pytest.fixture
def history(store: AuditStore) -> AuditStore:
    facts = [
        *exchange(0, "gm0363", VT, SUBJECT, signal="11111111-1111-1111-1111-111111111111"),
        *exchange(10, "gm0363", POLICE, SUBJECT, confidential_until=date(2028, 1, 1)),
        *exchange(20, "gm0363", OM, SUBJECT, permit=False, confidential_until=date(2026, 11, 1)),
        *exchange(30, "gm0599", VT, SUBJECT, receipt=None),
        *exchange(40, "gm0363", VT, OTHER),
        fact(
            50,
            "nl.safetychain.consent.directives.v1",
            "gm0363",
            target="consent",
            subject_pseudonym=SUBJECT,
            agreement_id="hg",
            decision="directive-objection",
            reasons=("by gm0363/j.jansen",),
        ),
        fact(
            60,
            "nl.safetychain.subject.erased.v1",
            "gm0363",
            target="signals",
            subject_pseudonym=SUBJECT,
            decision="erased",
            reasons=("by gm0363/j.jansen",),
        ),
    ]
    store.append_batch(facts)
    return store


PARTNERS = {VT, POLICE, OM}


def reader(scope: str) -> ReaderScope:
    """The scope of a reader by name, as services.audit.queries.search.reader_scope derives it."""
    if scope == ALL_RECORDS:
        return ReaderScope.everything()
    return ReaderScope.partner(scope) if scope in PARTNERS else ReaderScope.municipality(scope)


def search(store: AuditStore, scope: str, **criteria: Any) -> list[AuditRecord]:
    return store.records(to_query(SearchCriteria(**criteria), LOOKUP, reader(scope), store))


def test_a_bsn_finds_the_same_records_as_its_pseudonym_and_is_not_in_the_query(history: AuditStore) -> None:
    query = to_query(SearchCriteria(bsn=SecretStr(BSN)), LOOKUP, reader(ALL_RECORDS))
    assert BSN not in repr(query) and BSN not in str(query.criteria())
    assert query.subject == SUBJECT
    assert history.records(query) == search(history, ALL_RECORDS, subject=SUBJECT)
    assert {r.signal_id for r in history.records(query) if r.signal_id} and all(
        r.subject_pseudonym in (SUBJECT, "d" * 32) for r in history.records(query)
    )


def test_an_invalid_bsn_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as refused:
        SearchCriteria(bsn=SecretStr("123456789"))
    assert "123456789" not in str(refused.value)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"organisation": POLICE}, {("gm0363", POLICE)}),
        ({"decision": "deny"}, {("gm0363", OM)}),
        (
            {"agreement_id": "hg", "agreement_version": 1, "decision": "permit", "organisation": "gm0599"},
            {("gm0599", VT)},
        ),
        ({"event_type": ExchangeReceipt.event_type, "organisation": "gm0599"}, set()),
        (
            {
                "category": "huiselijk_geweld",
                "event_type": ExchangeDecided.event_type,
                "since": START + timedelta(minutes=11),
                "until": START + timedelta(minutes=31),
            },
            {("gm0363", POLICE), ("gm0363", OM)},  # since inclusive (11), until exclusive (31)
        ),
    ],
)
def test_each_criterion_narrows_the_search(
    history: AuditStore, criteria: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    found = search(history, ALL_RECORDS, **criteria)
    decided = {(r.source, r.target) for r in found if r.event_type == ExchangeDecided.event_type}
    assert decided == expected
    for record in found:
        if "decision" in criteria:
            assert record.decision == criteria["decision"]
        if "since" in criteria:
            assert criteria["since"] <= datetime.fromisoformat(record.event_time) < criteria["until"]


def test_scope_limits_every_search_to_the_readers_own_records(history: AuditStore) -> None:
    everything = search(history, ALL_RECORDS)
    assert len(everything) == history.size()
    for municipality in ("gm0363", "gm0599"):
        mine = search(history, municipality)
        assert mine and {r.seq for r in mine} == {
            r.seq for r in everything if municipality in (r.source, r.target)
        }
    for partner in (VT, POLICE):
        # a partner: what reached it (deliveries, receipts), never a decision or a platform id
        mine = search(history, partner)
        assert mine and {r.seq for r in mine} == {
            r.seq for r in everything if partner in (r.source, r.target) and r.event_type in RECEIVED_EVENTS
        }
        assert not any(r.signal_id or r.subject_pseudonym in (SUBJECT, OTHER) for r in mine)
    # asking for another organisation's records within your own scope finds only the shared ones
    assert all("gm0599" in (r.source, r.target) for r in search(history, VT, organisation="gm0599"))
    assert search(history, POLICE, organisation="gm0599") == []
    # nor does asking by the signal or the platform's pseudonym lead a partner anywhere
    assert search(history, VT, signal_id="11111111-1111-1111-1111-111111111111") == []
    assert search(history, VT, subject=SUBJECT) == []


def test_a_partner_finds_a_person_by_bsn_only_where_a_delivery_to_it_carried_the_bsn(
    store: AuditStore,
) -> None:
    with_bsn, without_bsn = "e" * 32, "f" * 32  # the partners' own pseudonyms of the person
    facts = [
        *exchange(0, "gm0363", POLICE, SUBJECT),
        *exchange(10, "gm0363", VT, SUBJECT),
        *exchange(20, "gm0363", OM, SUBJECT, permit=False),
    ]

    def partner_side(item: AuditFact) -> AuditFact:
        """The partner's records name its own pseudonym; a delivery, the fields it carried."""
        if item.event_type not in RECEIVED_EVENTS:
            return item
        police = POLICE in (item.source, item.target)
        update: dict[str, Any] = {"subject_pseudonym": with_bsn if police else without_bsn}
        if item.event_type == SignalDelivered.event_type:
            update["fields"] = ("category", "subject.bsn" if police else "subject.name")
        return item.model_copy(update=update)

    store.append_batch([partner_side(item) for item in facts])
    police = to_query(SearchCriteria(bsn=SecretStr(BSN)), LOOKUP, reader(POLICE), store)
    assert police.subject == with_bsn
    found = store.records(police)
    assert {r.event_type for r in found} == {SignalDelivered.event_type, ExchangeReceipt.event_type}
    assert all(r.subject_pseudonym == with_bsn and not r.signal_id for r in found)
    # Veilig Thuis received the person, but never the BSN; the prosecutor was refused: nothing,
    # and no pseudonym to show for the BSN typed
    for partner in (VT, OM):
        query = to_query(SearchCriteria(bsn=SecretStr(BSN)), LOOKUP, reader(partner), store)
        assert query.subject == NOT_RECEIVED and store.records(query) == []


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_keyset_pages_visit_every_record_once_in_time_order(
    history: AuditStore, limit: int, newest_first: bool
) -> None:
    query = RecordQuery(within="gm0363")
    expected = paged(search(history, "gm0363"), Page(limit=10_000, newest_first=newest_first))
    seen: list[AuditRecord] = []
    cursor: str | None = None
    for _ in range(100):
        request = SearchRequest(limit=limit, after=cursor, newest_first=newest_first)
        records, cursor = split_page(history.page(query, page_of(request)), limit)
        assert len(records) <= limit
        seen += records
        if cursor is None:
            break
    assert [r.seq for r in seen] == [r.seq for r in expected]
    times = [(r.event_time, r.seq) for r in seen]
    assert times == sorted(times, reverse=newest_first)


def test_a_page_stays_stable_while_the_log_grows(history: AuditStore) -> None:
    query = RecordQuery(within="gm0363")
    first, cursor = split_page(history.page(query, page_of(SearchRequest(limit=3, newest_first=False))), 3)
    # a record that happened earlier but arrives now does not shift the pages that follow
    history.append_batch(exchange(-30, "gm0363", VT, SUBJECT))
    rest, _ = split_page(
        history.page(query, page_of(SearchRequest(limit=500, after=cursor, newest_first=False))), 500
    )
    assert not {r.seq for r in first} & {r.seq for r in rest}
    assert all((r.event_time, r.seq) > (first[-1].event_time, first[-1].seq) for r in rest)


def report(store: AuditStore, scope: str, version: Version, subject: str = SUBJECT) -> Any:
    """As POST /v1/audit/reports/subject-access builds it."""
    records = store.records(to_query(SearchCriteria(subject=subject), LOOKUP, reader(scope)))
    partner = reader(scope).received_only
    return build_report(
        records,
        subject=subject,
        scope=scope,
        names={VT: "Veilig Thuis Amsterdam-Amstelland", POLICE: "Politie", OM: "OM"},
        version=version,
        today=TODAY,
        generated_at=datetime(2026, 11, 29, tzinfo=UTC),
        log_size=store.size(),
        checkpoint_size=None,
        confidential_until=deliveries_confidential_until(store, records) if partner else None,
    )


def test_a_partners_report_holds_what_reached_it_as_confidential_as_the_decisions_behind_it(
    history: AuditStore,
) -> None:
    partner_pseudonym = "d" * 32  # what the history's deliveries and receipts name
    police = report(history, POLICE, Version.OFFICER, partner_pseudonym)
    (section,) = police.recipients
    (delivered,) = section.exchanges
    assert section.recipient == POLICE and delivered.provider == "gm0363" and delivered.decision == "permit"
    assert (
        delivered.delivered_at is not None and delivered.receipt == "opened" and len(delivered.records) == 2
    )
    assert delivered.confidentiality is Vertrouwelijkheid.VERTROUWELIJK and police.withheld == 1
    assert police.signals == [] and police.directives == [] and police.erasures == []
    assert report(history, POLICE, Version.CITIZEN, partner_pseudonym).recipients == []
    vt = report(history, VT, Version.CITIZEN, partner_pseudonym)
    assert [(e.provider, e.receipt) for e in vt.recipients[0].exchanges] == [
        ("gm0363", "opened"),
        ("gm0599", None),
        ("gm0363", "opened"),
    ]
    # asked by the platform's pseudonym a partner's report holds nothing
    assert report(history, VT, Version.OFFICER).recipients == []


def test_the_officers_report_groups_every_exchange_by_recipient(history: AuditStore) -> None:
    officer = report(history, ALL_RECORDS, Version.OFFICER)
    by_recipient = {section.recipient: section for section in officer.recipients}
    assert set(by_recipient) == {VT, POLICE, OM}
    vt = by_recipient[VT].exchanges
    assert [(e.provider, e.receipt) for e in vt] == [("gm0363", "opened"), ("gm0599", None)]
    first = vt[0]
    assert first.fields == ["category", "subject.name"] and first.decision == "permit"
    assert first.agreement_id == "hg" and first.legal_basis == "Wmo 2015, art. 5.2.6"
    assert first.delivered_at is not None and first.receipt_at is not None and len(first.records) == 3
    (police,) = by_recipient[POLICE].exchanges
    assert police.confidentiality is Vertrouwelijkheid.VERTROUWELIJK and police.confidential_until == date(
        2028, 1, 1
    )
    (om,) = by_recipient[OM].exchanges
    assert om.decision == "deny" and om.fields == [] and om.confidentiality is Vertrouwelijkheid.OPGEHEVEN
    assert officer.withheld == 1
    assert [(d.kind, d.actor) for d in officer.directives] == [("objection", "gm0363/j.jansen")]
    assert [e.requested_by for e in officer.erasures] == ["gm0363"] and len(officer.signals) == 4
    # the other subject's exchange is not in this report
    assert officer.exchange_count == 4


def test_the_citizens_report_withholds_confidential_exchanges_and_staff_names(history: AuditStore) -> None:
    citizen = report(history, ALL_RECORDS, Version.CITIZEN)
    recipients = {section.recipient for section in citizen.recipients}
    assert POLICE not in recipients  # confidential until 2028
    assert OM in recipients  # its confidentiality was lifted on 2026-11-01
    assert citizen.withheld == 0 and citizen.exchange_count == 3
    assert all(d.actor is None for d in citizen.directives)
    assert "j.jansen" not in citizen.model_dump_json() and POLICE not in citizen.model_dump_json()


def test_a_municipalitys_report_holds_only_its_own_exchanges(history: AuditStore) -> None:
    rotterdam = report(history, "gm0599", Version.OFFICER)
    assert [(s.recipient, [e.provider for e in s.exchanges]) for s in rotterdam.recipients] == [
        (VT, ["gm0599"])
    ]
    assert rotterdam.directives == [] and rotterdam.erasures == []


def test_count_and_every_page_agree_with_the_reference(history: AuditStore) -> None:
    for scope in (ALL_RECORDS, "gm0363", POLICE):
        query = to_query(SearchCriteria(category="huiselijk_geweld"), LOOKUP, reader(scope))
        expected = paged((r for r in history.records_in_sequence() if matches(r, query)), Page(limit=10_000))
        assert history.count(query) == len(expected)
        assert [r.seq for r in every_page(history, query, size=2)] == [r.seq for r in expected]


@pytest.mark.parametrize(("scope", "subject"), [(ALL_RECORDS, SUBJECT), ("gm0363", SUBJECT), (VT, "d" * 32)])
@pytest.mark.parametrize("limit", [1, 4])
def test_pages_that_follow_deliveries_visit_exactly_the_whole_answer(
    history: AuditStore, scope: str, subject: str, limit: int
) -> None:
    """GET /v1/audit/records: a subject's records with the partner-side records linked to them,
    a page at a time, as `records()` answers them at once."""
    query = reader(scope).query(subject=subject)
    whole = history.records(query)
    seen: list[AuditRecord] = []
    after: tuple[str, int] | None = None
    while True:
        page = history.page(query, Page(limit=limit, after=after, linked=True))
        seen += page
        if len(page) < limit:
            break
        after = (page[-1].event_time, page[-1].seq)
    assert whole and [r.seq for r in seen] == [r.seq for r in whole]


@pytest.mark.parametrize("flagged", [None, False, True])
@pytest.mark.parametrize("scope", [ALL_RECORDS, "gm0363", VT])
def test_facts_and_flagged_records_are_told_apart_like_the_reference(
    history: AuditStore, flagged: bool | None, scope: str
) -> None:
    planted = [
        item.model_copy(update={"decision": verdict, "reasons": ("not signed by consent",)})
        for item, verdict in zip(
            exchange(70, "gm0363", VT, SUBJECT),
            ("forged", "unverifiable", "forged", "receipt-forged"),
            strict=True,
        )
    ]
    history.append_batch(planted)
    query = reader(scope).query(flagged=flagged)
    expected = [r.seq for r in history.records_in_sequence() if matches(r, query)]
    assert sorted(r.seq for r in history.records(query)) == expected
    assert history.count(query) == len(expected) and (expected or flagged is True)
    if flagged is not None:
        assert all((r.decision in FLAGGED_DECISIONS) == flagged for r in history.records(query))
