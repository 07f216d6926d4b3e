"""Which audit records to read: the query, the reader's scope and the page.

Pure: `matches`, `paged` and `linked_by_delivery` are the reference every store is held to (the
in-memory store uses them as they are; the SQL store says the same in SQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Final

from services.audit.log.catalogue import RECEIVED_EVENTS
from services.audit.log.facts import FLAGGED_DECISIONS
from services.audit.log.record import AuditRecord
from shared.plumbing.policy import ALL_RECORDS


@dataclass(frozen=True)
class RecordQuery:
    """Which records to read; every given criterion must match. Times are RFC 3339 strings,
    `since` inclusive and `until` exclusive."""

    signal_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    subject: str | None = None
    organisation: str | None = None  # as source or target
    category: str | None = None
    decision: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    delivery_id: str | None = None  # a delivery's or erasure notice's id (the partner's own)
    since: str | None = None
    until: str | None = None
    flagged: bool | None = None  # False: verified facts only; True: only what the log flagged
    within: str | None = None  # the reader's scope: only records where it is source or target
    received_only: bool = False  # with `within`, a partner's scope: only what reached it

    def criteria(self) -> dict[str, str]:
        """The criteria given, by name (what a read record says was asked; the scope is the
        read's own field)."""
        return {name: str(value) for name, value in self._given() if name not in _SCOPE}

    @property
    def follows_deliveries(self) -> bool:
        """Asked about one signal, trace or subject: the partner-side records of its deliveries
        (which name the partner's own ids and pseudonyms) belong to the answer."""
        return self.signal_id is not None or self.correlation_id is not None or self.subject is not None

    def equalities(self) -> tuple[tuple[str, str | int], ...]:
        """(record field, wanted value) for every equality criterion given."""
        return tuple(
            (_RECORD_FIELD.get(name, name), value)
            for name, value in self._given()
            if name not in _NOT_EQUALITIES
        )

    def _given(self) -> list[tuple[str, str | int]]:
        return [
            (f.name, value)
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None and not (f.name == "received_only" and not value)
        ]


@dataclass(frozen=True)
class ReaderScope:
    """Whose records a reader may see (from its grant, shared/plumbing/policy.py READ_AUDIT): the whole
    log (the platform's privacy officer), a municipality's records (it is source or target: what
    it provided and what was done with it), or a partner's (what reached it: `RECEIVED_EVENTS`
    where it is the recipient or the one who confirmed)."""

    organisation: str | None = None  # None: every record
    received_only: bool = False

    @classmethod
    def everything(cls) -> ReaderScope:
        return cls()

    @classmethod
    def municipality(cls, organisation: str) -> ReaderScope:
        return cls(organisation)

    @classmethod
    def partner(cls, organisation: str) -> ReaderScope:
        return cls(organisation, received_only=True)

    @property
    def name(self) -> str:
        """The scope as a read record states it: an organisation, or ALL_RECORDS."""
        return self.organisation or ALL_RECORDS

    def covers(self, record: AuditRecord) -> bool:
        return _in_scope(record, self.organisation, self.received_only)

    def query(self, **criteria: Any) -> RecordQuery:
        """The store query for `criteria` within this scope."""
        return RecordQuery(**criteria, within=self.organisation, received_only=self.received_only)


_SCOPE: Final = frozenset({"within", "received_only"})
_NOT_EQUALITIES: Final = frozenset({"organisation", "since", "until", "flagged", *_SCOPE})  # parties, ranges
_RECORD_FIELD: Final = {"subject": "subject_pseudonym"}  # criterion -> record field, where they differ


@dataclass(frozen=True)
class Page:
    """One page of a search: at most `limit` records, ordered by (event time, sequence),
    oldest first unless `newest_first`; `after` is the (event_time, seq) of the last record of
    the previous page (keyset pagination: stable while the log grows)."""

    limit: int = 50
    after: tuple[str, int] | None = None
    newest_first: bool = False
    linked: bool = False  # with a query that follows deliveries: the linked records too (records())


def _in_scope(record: AuditRecord, within: str | None, received_only: bool) -> bool:
    if within is None:
        return True
    if received_only and record.event_type not in RECEIVED_EVENTS:
        return False
    return within in (record.source, record.target)


def _flagged_as_asked(record: AuditRecord, flagged: bool | None) -> bool:
    return flagged is None or (record.decision in FLAGGED_DECISIONS) == flagged


def matches(record: AuditRecord, query: RecordQuery) -> bool:
    if any(getattr(record, name) != value for name, value in query.equalities()):
        return False
    if query.since is not None and record.event_time < query.since:
        return False
    if query.until is not None and record.event_time >= query.until:
        return False
    if not _flagged_as_asked(record, query.flagged):
        return False
    if query.organisation is not None and query.organisation not in (record.source, record.target):
        return False
    return _in_scope(record, query.within, query.received_only)


def linked_to(record: AuditRecord, query: RecordQuery, delivery_ids: set[str]) -> bool:
    """A partner-side record that one of `delivery_ids` leads to, within the query's scope and
    integrity (see `linked_by_delivery`)."""
    return (
        record.delivery_id in delivery_ids
        and _in_scope(record, query.within, query.received_only)
        and _flagged_as_asked(record, query.flagged)
    )


def in_scope(record: AuditRecord, scope: ReaderScope) -> bool:
    """Whether a reader whose audit scope is `scope` may see `record`."""
    return scope.covers(record)


def _position(record: AuditRecord) -> tuple[str, int]:
    return (record.event_time, record.seq)


def paged(records: Iterable[AuditRecord], page: Page) -> list[AuditRecord]:
    """The reference keyset page over records already filtered (the in-memory store's)."""
    ordered = sorted(records, key=_position, reverse=page.newest_first)
    if page.after is not None:
        after = page.after
        ordered = [
            r for r in ordered if (_position(r) < after if page.newest_first else _position(r) > after)
        ]
    return ordered[: page.limit]


def linked_by_delivery(
    found: dict[int, AuditRecord], query: RecordQuery, candidates: Iterable[AuditRecord]
) -> None:
    """A partner's records name its own delivery id, never the signal or its trace: the decision
    records found lead to them (within the reader's scope)."""
    delivery_ids = {r.delivery_id for r in found.values() if r.delivery_id}
    for record in candidates:
        if linked_to(record, query, delivery_ids):
            found.setdefault(record.seq, record)


def in_event_order(found: Iterable[AuditRecord]) -> list[AuditRecord]:
    return sorted(found, key=lambda record: (record.event_time, record.seq))
