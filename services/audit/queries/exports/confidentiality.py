"""Which records an export carries, and how confidential each is (VWL `vertrouwelijkheid`).

Only verified facts (services.audit.log.facts.is_fact: what the log flagged is no fact to
export); the citizen's version without what is still confidential. A decision's
`confidential_until` also holds for the records that name its delivery id (the delivery, the
partner's receipt), which do not carry the date themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.audit.log.facts import is_fact
from services.audit.queries.exports.context import ExportContext, ExportCounts, Record


class Vertrouwelijkheid(StrEnum):
    """VWL `vertrouwelijkheid` (enum in the standard's OpenAPI: normaal, vertrouwelijk, opgeheven)."""

    NORMAAL = "normaal"
    VERTROUWELIJK = "vertrouwelijk"
    OPGEHEVEN = "opgeheven"


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _level(until: date | None, today: date) -> Vertrouwelijkheid:
    if until is None:
        return Vertrouwelijkheid.NORMAAL
    return Vertrouwelijkheid.VERTROUWELIJK if today < until else Vertrouwelijkheid.OPGEHEVEN


def vertrouwelijkheid(record: Record, today: date) -> Vertrouwelijkheid:
    """normaal without `confidential_until`; vertrouwelijk while today is before that date;
    opgeheven from that date on."""
    return _level(_as_date(record.get("confidential_until")), today)


class _Confidentiality:
    """Per export: the dates decisions gave their delivery ids so far."""

    def __init__(self, today: date) -> None:
        self.today = today
        self._by_delivery: dict[str, date] = {}

    def of(self, record: Record) -> Vertrouwelijkheid:
        until = _as_date(record.get("confidential_until"))
        delivery = record.get("delivery_id")
        if delivery:
            known = self._by_delivery.get(delivery)
            if until is not None and (known is None or until > known):
                self._by_delivery[delivery] = until
            elif until is None:
                until = known
        return _level(until, self.today)


def selected(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts
) -> Iterator[tuple[Record, Vertrouwelijkheid]]:
    """Every verified fact with its confidentiality; the citizen's version without the
    confidential (counted as withheld)."""
    confidentiality = _Confidentiality(context.today)
    for record in records:
        if not is_fact(record):
            continue
        level = confidentiality.of(record)
        if context.citizen and level is Vertrouwelijkheid.VERTROUWELIJK:
            counts.withheld += 1
            continue
        yield record, level
