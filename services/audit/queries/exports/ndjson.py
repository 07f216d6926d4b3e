"""The NDJSON export: one JSON object per line, the audit record and its proof reference."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from services.audit.log.record import AuditRecord
from services.audit.queries.exports.confidentiality import selected
from services.audit.queries.exports.context import ExportContext, ExportCounts
from services.audit.queries.exports.document import json_line, record_document


def export(
    records: Iterable[AuditRecord], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """One JSON object per line: the record's `RECORD_FIELDS` plus `proof`
    (ProofReference.as_dict)."""
    counts = counts if counts is not None else ExportCounts()
    for record, _ in selected(records, context, counts):
        document = record_document(record, context)
        document["proof"] = context.proof(record).as_dict()
        counts.written += 1
        yield json_line(document)
