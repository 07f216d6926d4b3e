"""The CSV export: a header row, then one row per audit record with its proof reference
(RFC 4180, CRLF line ends), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any, Final

from services.audit.log.record import AuditRecord
from services.audit.queries.exports.confidentiality import selected
from services.audit.queries.exports.context import ExportContext, ExportCounts
from services.audit.queries.exports.document import RECORD_FIELDS, record_document

CSV_HEADER: Final = (*RECORD_FIELDS, "proof_tree_size", "proof_inclusion")
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell: lists joined with `;`, absent values empty, and a cell a spreadsheet would
    run as a formula (OWASP CSV injection: = + - @, tab, carriage return) prefixed with '."""
    if value is None:
        text = ""
    elif isinstance(value, list | tuple):
        text = ";".join(str(item) for item in value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export(
    records: Iterable[AuditRecord], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """A header row (`CSV_HEADER`), then one row per record."""
    counts = counts if counts is not None else ExportCounts()
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def row(cells: Iterable[Any]) -> str:
        writer.writerow([_cell(cell) for cell in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield row(CSV_HEADER)
    for record, _ in selected(records, context, counts):
        document = record_document(record, context)
        proof = context.proof(record)
        counts.written += 1
        yield row([*(document[name] for name in RECORD_FIELDS), proof.tree_size, proof.inclusion])
