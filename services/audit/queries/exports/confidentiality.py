"""Which records an export carries, and how confidential each is (VWL `vertrouwelijkheid`).

Only verified facts (services.audit.log.facts.is_fact: what the log flagged is no fact to
export); the citizen's version without what is still confidential. A decision's
`confidential_until` also holds for the records that name its delivery id (the delivery, the
partner's receipt), which do not carry the date themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from enum import StrEnum

from services.audit.log.facts import is_fact
from services.audit.log.record import AuditRecord
from services.audit.queries.exports.context import ExportContext, ExportCounts


class Vertrouwelijkheid(StrEnum):
    """VWL `vertrouwelijkheid` (enum in the standard's OpenAPI: normaal, vertrouwelijk, opgeheven)."""

    NORMAAL = "normaal"
    VERTROUWELIJK = "vertrouwelijk"
    OPGEHEVEN = "opgeheven"


def confidentiality_until(until: date | None, today: date) -> Vertrouwelijkheid:
    """normaal without a date; vertrouwelijk while today is before it; opgeheven from it on."""
    if until is None:
        return Vertrouwelijkheid.NORMAAL
    return Vertrouwelijkheid.VERTROUWELIJK if today < until else Vertrouwelijkheid.OPGEHEVEN


def vertrouwelijkheid(record: AuditRecord, today: date) -> Vertrouwelijkheid:
    """How confidential the record is today, by its own `confidential_until`."""
    return confidentiality_until(record.confidential_until, today)


class _Confidentiality:
    """Per export: the dates decisions gave their delivery ids so far."""

    def __init__(self, today: date) -> None:
        self.today = today
        self._by_delivery: dict[str, date] = {}

    def of(self, record: AuditRecord) -> Vertrouwelijkheid:
        until = record.confidential_until
        delivery = record.delivery_id
        if delivery:
            known = self._by_delivery.get(delivery)
            if until is not None and (known is None or until > known):
                self._by_delivery[delivery] = until
            elif until is None:
                until = known
        return confidentiality_until(until, self.today)


def selected(
    records: Iterable[AuditRecord], context: ExportContext, counts: ExportCounts
) -> Iterator[tuple[AuditRecord, Vertrouwelijkheid]]:
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
