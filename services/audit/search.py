"""What a privacy officer may ask of the log: search criteria, the subject lookup and pages.

An officer may enter a citizen's BSN. It arrives in a request body (never in a URL, so never in
an access log or a browser's history), is turned into the subject's pseudonym with the same key
signals uses (`SubjectLookup`), and is then forgotten: the criteria kept, logged and echoed name
the pseudonym only. Every search is scoped by the caller's grant (shared/policy.py) before the
store sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from services.audit.store import Page, RecordQuery
from shared.contracts.signal import Category, passes_eleven_test
from shared.crypto.pseudonyms import subject_pseudonym
from shared.policy import ALL_RECORDS

PSEUDONYM_PATTERN = r"^[0-9a-f]{32}$"
MAX_PAGE = 500


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
    """BSN -> the subject pseudonym signals gave that person (shared/crypto/pseudonyms.py)."""

    key: bytes

    def pseudonym(self, bsn: SecretStr) -> str:
        return subject_pseudonym(self.key, "person", bsn.get_secret_value().strip())


def record_time(moment: datetime) -> str:
    """A bound in the stored form of event times (RFC 3339, UTC, microseconds): compared as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_query(criteria: SearchCriteria, lookup: SubjectLookup, scope: str | None) -> RecordQuery:
    """The store query for these criteria within the caller's audit scope (from its grant)."""
    if criteria.bsn is not None and criteria.subject is not None:
        raise ValueError("give a BSN or a subject pseudonym, not both")
    subject = lookup.pseudonym(criteria.bsn) if criteria.bsn is not None else criteria.subject
    return RecordQuery(
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
        within=None if scope in (None, ALL_RECORDS) else scope,
    )


def encode_cursor(record: dict[str, Any]) -> str:
    position = json.dumps([record["event_time"], record["seq"]], separators=(",", ":"))
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


def split_page(records: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """(this page's records, the cursor of the next page or None when this was the last)."""
    if len(records) <= limit:
        return records, None
    shown = records[:limit]
    return shown, encode_cursor(shown[-1])
