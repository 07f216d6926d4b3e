"""The audit record as an export carries it: its fields (an allowlist), the reasons a citizen
may read, who acted, and one JSON line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

from services.audit.log.record import AuditRecord
from services.audit.queries.exports.context import ExportContext

RECORD_FIELDS: Final = tuple(AuditRecord.model_fields)
"""The audit record's fields, in this order, in NDJSON and CSV; nothing a store keeps beside
them (a leaf hash) is in the record, so nothing else leaves."""

_ACTOR = re.compile(r"^(?:(?:proposed|approved|rejected|pending) )?by (?P<actor>\S.*)$")
"""A reason that names who acted (services.audit.log.statements: agreement changes, proposals,
directives, erasures, reads); "not signed by <organisation>" is no actor."""


def actor(reason: str) -> str | None:
    match = _ACTOR.match(reason)
    return match.group("actor") if match else None


def reasons(record: AuditRecord, context: ExportContext) -> list[str]:
    """The record's reasons; in the citizen's version without those that name an actor."""
    given = list(record.reasons)
    return [reason for reason in given if actor(reason) is None] if context.citizen else given


def record_document(record: AuditRecord, context: ExportContext) -> dict[str, Any]:
    """The record as JSON, its `RECORD_FIELDS` in order, with the reasons this version shows."""
    return record.document() | {"reasons": reasons(record, context)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def json_line(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_jsonable) + "\n"
