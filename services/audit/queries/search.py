"""What a privacy officer may ask of the log: search criteria, the subject lookup and pages.

An officer may enter a citizen's BSN. It arrives in a request body (never in a URL, so never in
an access log or a browser's history), is turned into the subject's pseudonym with the same key
signals uses (`SubjectLookup`), and is then forgotten: the criteria kept, logged and echoed name
the pseudonym only. Every search is scoped by the caller's grant (shared/plumbing/policy.py) before the
store sees it.

A partner's officer reads what reached the partner, under the partner's own pseudonym of the
person; it finds a person by BSN only where it lawfully received that BSN, i.e. where a
delivery to it carried `subject.bsn` (`received_pseudonym`). For any other BSN the search
matches nothing and names no pseudonym (`NOT_RECEIVED`).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from services.audit.log.facts import is_fact
from services.audit.log.query import Page, ReaderScope, RecordQuery
from services.audit.log.record import AuditRecord
from services.audit.log.store import AuditStore
from shared.contracts.crypto.pseudonyms import subject_pseudonym
from shared.contracts.events import ExchangeDecided, SignalDelivered
from shared.contracts.registry import OrganisationKind
from shared.contracts.signal import Category, passes_eleven_test
from shared.plumbing.policy import ALL_RECORDS, Principal

PSEUDONYM_PATTERN = r"^[0-9a-f]{32}$"
MAX_PAGE = 500
NOT_RECEIVED: Final = "not-received"
"""The subject criterion of a partner's search by a BSN that never reached it: no pseudonym is 32
hex digits like this, so it matches no record, and the read's record says just that."""
BSN_FIELD: Final = "subject.bsn"


class InvalidCursorError(ValueError):
    """The `after` cursor is not one this service handed out."""


class SearchCriteria(BaseModel):
    """The body of a search (and of an export): every given criterion must match."""

    model_config = ConfigDict(extra="forbid")

    bsn: SecretStr | None = Field(
        default=None,
        description="A citizen's BSN: pseudonymised by the service, never stored, logged or echoed."
        " Give it or `subject`, not both.",
    )
    subject: str | None = Field(default=None, pattern=PSEUDONYM_PATTERN, description="A subject pseudonym.")
    organisation: str | None = Field(default=None, max_length=100, description="As source or target.")
    category: Category | None = None
    event_type: str | None = Field(default=None, max_length=100)
    decision: str | None = Field(default=None, max_length=40, description="e.g. permit, deny, rejected.")
    agreement_id: str | None = Field(default=None, max_length=100)
    agreement_version: int | None = Field(default=None, ge=1)
    signal_id: str | None = Field(default=None, max_length=36)
    correlation_id: str | None = Field(default=None, max_length=32)
    since: datetime | None = Field(default=None, description="From this moment (inclusive).")
    until: datetime | None = Field(default=None, description="Before this moment (exclusive).")

    @field_validator("bsn")
    @classmethod
    def _a_bsn(cls, bsn: SecretStr | None) -> SecretStr | None:
        if bsn is not None and not passes_eleven_test(bsn.get_secret_value().strip()):
            raise ValueError("a BSN is nine digits passing the eleven-test")  # the value is not echoed
        return bsn

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and moment.tzinfo is None:
            raise ValueError("give a time zone (e.g. Z or +01:00)")
        return moment

    def without_bsn(self) -> SearchCriteria:
        return self.model_copy(update={"bsn": None})


class SearchRequest(SearchCriteria):
    """A search: the criteria and which page."""

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    after: str | None = Field(default=None, max_length=200, description="`next` of the previous page.")
    newest_first: bool = True


@dataclass(frozen=True)
class SubjectLookup:
    """BSN -> the subject pseudonym signals gave that person (shared/contracts/crypto/pseudonyms.py)."""

    key: bytes

    def pseudonym(self, bsn: SecretStr) -> str:
        return subject_pseudonym(self.key, "person", bsn.get_secret_value().strip())


def reader_scope(principal: Principal, audit_scope: str | None) -> ReaderScope:
    """The scope of a reader the policy allowed to read the log (`Verdict.audit_scope`: its
    organisation, or ALL_RECORDS): a partner's covers only what reached it."""
    if audit_scope is None:
        raise ValueError("no audit scope: the policy did not allow reading the log")
    if audit_scope == ALL_RECORDS:
        return ReaderScope.everything()
    if principal.kind is OrganisationKind.PARTNER:
        return ReaderScope.partner(audit_scope)
    return ReaderScope.municipality(audit_scope)


def received_pseudonym(store: AuditStore, partner: str, subject: str) -> str | None:
    """`partner`'s own pseudonym of the person the platform knows as `subject`, when a delivery to
    it carried that person's BSN (verified records only: a decision permitting it, the delivery
    with `subject.bsn` among its fields); else None."""
    decided = RecordQuery(
        subject=subject,
        event_type=ExchangeDecided.event_type,
        decision="permit",
        organisation=partner,
        flagged=False,
    )
    found = store.records(decided)  # with the (verified) deliveries its delivery ids lead to
    permitted = {
        r.delivery_id
        for r in found
        if r.event_type == ExchangeDecided.event_type and r.target == partner and is_fact(r)
    }
    return next(
        (
            r.subject_pseudonym
            for r in found
            if r.event_type == SignalDelivered.event_type
            and r.target == partner
            and r.delivery_id in permitted
            and BSN_FIELD in r.fields
            and r.subject_pseudonym
            and is_fact(r)
        ),
        None,
    )


def deliveries_confidential_until(store: AuditStore, records: list[AuditRecord]) -> dict[str, date | None]:
    """By delivery id, how long the verified decision behind each delivery among `records` keeps
    it confidential (services/audit/queries/report.py): for a partner's report, which shows deliveries
    but never the decisions themselves."""
    found: dict[str, date | None] = {}
    for record in records:
        delivery = record.delivery_id
        if record.event_type != SignalDelivered.event_type or not delivery or delivery in found:
            continue
        decided = RecordQuery(event_type=ExchangeDecided.event_type, delivery_id=delivery, flagged=False)
        found[delivery] = next(
            (r.confidential_until for r in store.records(decided) if r.confidential_until), None
        )
    return found


def subject_of(
    bsn: SecretStr | None,
    subject: str | None,
    lookup: SubjectLookup,
    scope: ReaderScope,
    store: AuditStore | None,
) -> str | None:
    """The pseudonym a reader in `scope` searches for: the one given, or the BSN's (a partner's
    own pseudonym, or NOT_RECEIVED). Reads the store for a partner's BSN: call off the loop."""
    if bsn is not None and subject is not None:
        raise ValueError("give a BSN or a subject pseudonym, not both")
    if bsn is None:
        return subject
    platform = lookup.pseudonym(bsn)
    if not scope.received_only:
        return platform
    if store is None or scope.organisation is None:
        raise ValueError("a partner's search by BSN needs the store")
    return received_pseudonym(store, scope.organisation, platform) or NOT_RECEIVED


def record_time(moment: datetime) -> str:
    """A bound in the stored form of event times (RFC 3339, UTC, microseconds): compared as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_query(
    criteria: SearchCriteria,
    lookup: SubjectLookup,
    scope: ReaderScope,
    store: AuditStore | None = None,
    flagged: bool | None = None,
) -> RecordQuery:
    """The store query for these criteria within the caller's audit scope (from its grant). A
    partner's search by BSN reads `store` (see `subject_of`): call it off the event loop."""
    subject = subject_of(criteria.bsn, criteria.subject, lookup, scope, store)
    return scope.query(
        signal_id=criteria.signal_id,
        correlation_id=criteria.correlation_id,
        event_type=criteria.event_type,
        subject=subject,
        organisation=criteria.organisation,
        category=criteria.category.value if criteria.category else None,
        decision=criteria.decision,
        agreement_id=criteria.agreement_id,
        agreement_version=criteria.agreement_version,
        since=record_time(criteria.since) if criteria.since else None,
        until=record_time(criteria.until) if criteria.until else None,
        flagged=flagged,
    )


def echoed(subject: str | None) -> str | None:
    """The subject a page may show and a read record may name: never NOT_RECEIVED's meaning
    turned into a pseudonym."""
    return None if subject == NOT_RECEIVED else subject


def encode_cursor(record: AuditRecord) -> str:
    position = json.dumps([record.event_time, record.seq], separators=(",", ":"))
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        event_time, seq = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursorError("not a cursor this service gave") from error
    if not (isinstance(event_time, str) and isinstance(seq, int)) or isinstance(seq, bool):
        raise InvalidCursorError("not a cursor this service gave")
    return event_time, seq


def page_of(request: SearchRequest) -> Page:
    """The store page for a request: one record more than asked, to know whether more follow."""
    after = decode_cursor(request.after) if request.after else None
    return Page(limit=request.limit + 1, after=after, newest_first=request.newest_first)


def split_page(records: list[AuditRecord], limit: int) -> tuple[list[AuditRecord], str | None]:
    """(this page's records, the cursor of the next page or None when this was the last)."""
    if len(records) <= limit:
        return records, None
    shown = records[:limit]
    return shown, encode_cursor(shown[-1])
