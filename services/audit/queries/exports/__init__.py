"""Exports of audit-log queries: NDJSON, CSV, Logboek Dataverwerkingen (LDV) and VNG
Verwerkingenlogging (VWL), each record with a reference to its inclusion proof. One module per
format (ndjson.py, csv_rows.py, ldv.py, vwl.py); `render` picks one.

Pure and streaming: every format takes an iterable of audit records as the stores return them
and yields text chunks, one line (one CSV row) at a time, so a large export never sits in
memory. Nothing here reads a store: the caller passes the size of the newest checkpoint
(context.py, `ExportContext`).

What leaves, and what never does:
- NDJSON and CSV carry the audit record itself (exactly the fields of `RECORD_FIELDS`, nothing a
  store adds) plus its proof reference. From an NDJSON line without `proof`,
  services.audit.log.leaf.leaf_bytes rebuilds the record's leaf.
- LDV lines carry the subject's pseudonym and nothing else about a person: no reasons, no
  actor (LDV keeps user identities out of log lines).
- VWL's `gebruiker` is the actor a record's reasons name ("by ...", "proposed by ..."): only in
  the officer's version.
- The citizen's version (`ExportContext.citizen`) withholds every record that is still
  `vertrouwelijk`, drops the reasons that name an actor, and in VWL drops `gebruiker`,
  `systeem` and `gegevensbron` and every action without a subject, as VWL's citizen-facing read
  (VerwerkingsactieBeperkt, queried by object) does. Like the subject access report, it does not
  say that anything was withheld: that would disclose what it protects.

Confidentiality (confidentiality.py): an agreement may mark an exchange confidential (police,
public prosecutor) until a date; the decision record carries `confidential_until`. The records
that follow from that decision (the delivery, the partner's receipt) name the same
`delivery_id`; within one export they take the decision's date, so a citizen's export does not
show the delivery of a decision it withholds. A delivery exported without its decision cannot
be recognised here.

Checked against the standards themselves (their text wins over the project's handout where
they differ; each place says so):
- LDV: Logius-standaarden/logboek-dataverwerkingen, sections/specificaties.md (the text of the
  definitive version 1.0.0 of 9 April 2026, gitdocumentatie.logius.nl/publicatie/logboek/
  dataverwerkingen/1.0.0).
- VWL: VNG-Realisatie/gemma-verwerkingenlogging, docs/api-write/oas-specification/
  logging-verwerkingen-api/openapi.yaml (schemas Verwerkingsactie, VerwerktObjectBasis,
  VerwerktSoortGegeven) and docs/api-read/.../openapi.yaml (VerwerkingsactieBeperkt).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum

from services.audit.log.record import AuditRecord
from services.audit.queries.exports import csv_rows, ldv, ndjson, vwl
from services.audit.queries.exports.context import ExportContext, ExportCounts, Writer


class Format(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"
    LDV = "ldv"
    VWL = "vwl"

    @property
    def media_type(self) -> str:
        # LDV and VWL are streamed one JSON object per line as well.
        return "text/csv; charset=utf-8" if self is Format.CSV else "application/x-ndjson"

    @property
    def extension(self) -> str:
        return {
            Format.NDJSON: "ndjson",
            Format.CSV: "csv",
            Format.LDV: "ldv.ndjson",
            Format.VWL: "vwl.ndjson",
        }[self]


_FORMATS: dict[Format, Writer] = {
    Format.NDJSON: ndjson.export,
    Format.CSV: csv_rows.export,
    Format.LDV: ldv.export,
    Format.VWL: vwl.export,
}


def render(
    format: Format | str,
    records: Iterable[AuditRecord],
    context: ExportContext,
    counts: ExportCounts | None = None,
) -> Iterator[str]:
    """The export of `records` in `format` (a Format or its name), streamed in text chunks."""
    return _FORMATS[Format(format)](records, context, counts)
