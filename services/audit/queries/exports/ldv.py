"""The Logboek Dataverwerkingen (LDV 1.0.0) export: one log line per record about a data
subject, one JSON object per line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.audit.log.facts import FLAGGED_DECISIONS
from services.audit.log.record import AuditRecord
from services.audit.queries.exports.confidentiality import selected
from services.audit.queries.exports.context import ExportContext, ExportCounts
from services.audit.queries.exports.document import json_line
from services.audit.queries.exports.processing import (
    action_names,
    called_by,
    performed_by,
    processing_activity,
    subject_id_type,
)


def _span_id(record: AuditRecord) -> str:
    """8 bytes, hex: derived from the event id; a flagged record may repeat a genuine record's
    id (a replay), so its Kafka provenance is mixed in."""
    key = record.event_id
    if record.decision in FLAGGED_DECISIONS:
        key += f"|{record.kafka_topic}|{record.kafka_partition}|{record.kafka_offset}"
    digest = hashlib.sha256(b"safety-chain ldv span\x00" + key.encode()).digest()
    span = digest[:8] if any(digest[:8]) else digest[8:16]  # W3C: an all-zero id is invalid
    return span.hex()


def _epoch_ms(value: Any) -> int:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def export(
    records: Iterable[AuditRecord], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """Logboek Dataverwerkingen log lines, one JSON object per line.

    One line per data subject: a record names at most one subject (its pseudonym), so it is
    one line, and a record without a subject (an agreement change, a signal refused before it
    named anyone, a read without a subject filter) is no LDV line: it is counted in
    `counts.without_subject`, not written. No user identities: nothing from `reasons`.

    Fields (LDV 1.0.0, "Interface" of the Logboek; where it differs from the handout, it wins):
    - trace_id: the record's correlation id (the W3C trace id of the exchange).
    - span_id: 16 hex digits derived from the event id (`_span_id`).
    - parent_span_id: not written (optional). LDV 1.0.0 puts the calling action's span id here,
      also when another organisation called; the audit record keeps no span id of the
      traceparent it came with, so no parent can be named truthfully.
    - name: the action in words (LDV: "bestemd voor mensen, niet voor machines"), not the event
      type, which is in `safety_chain.audit.event_type`.
    - start_time, end_time: milliseconds since the Epoch (LDV 1.0.0: uint64), both the event's
      time: a record states one moment.
    - status: "Unset" (LDV: processed without an internal fault, also when the outcome was a
      refusal), "Error" for a record the log could not read.
    - resource.attributes: the service (service.namespace, service.name) and its organisation
      with its OIN.
    - attributes: dpl.core.processing_activity_id (processing.py `processing_activity`),
      dpl.core.data_subject_id (the pseudonym, nothing else), dpl.core.data_subject_id_type
      (processing.py `subject_id_type`), and when another organisation's call
      caused the record, dpl.core.foreign_operation.processor. LDV 1.0.0 types it a URL, "link
      naar externe applicatie"; the registry has no URLs, so by default it is the application's
      CloudEvents source, urn:nld:oin:<OIN>:systeem:<system> (a URI naming that organisation by
      its OIN), or `ExportContext.processor_url`. The handout's
      dpl.core.foreign_operation.span_id is not in LDV 1.0.0 (its draft had it) and is not
      written. The proof reference is in safety_chain.audit.seq, .tree_size and .inclusion:
      outside the dpl namespace, which LDV reserves for established extensions.
    """
    counts = counts if counts is not None else ExportCounts()
    registry = context.registry
    for record, _ in selected(records, context, counts):
        subject = record.subject_pseudonym
        if not subject:
            counts.without_subject += 1
            continue
        event_type = record.event_type
        writer, system = performed_by(record, registry)
        resource: dict[str, Any] = {
            "service.namespace": "safety-chain",
            "service.name": system or "safety-chain",
        }
        if writer is not None:
            resource |= {
                "safety_chain.organisation.id": writer.id,
                "safety_chain.organisation.name": writer.name,
                "safety_chain.organisation.oin": writer.oin,
            }
        attributes: dict[str, Any] = {
            "dpl.core.processing_activity_id": processing_activity(record, context.register_url),
            "dpl.core.data_subject_id": subject,
            "dpl.core.data_subject_id_type": subject_id_type(record),
        }
        caller = called_by(record, registry, writer)
        if caller is not None:
            attributes["dpl.core.foreign_operation.processor"] = (
                context.processor_url(caller) if context.processor_url else caller.source.urn
            )
        proof = context.proof(record)
        attributes["safety_chain.audit.event_type"] = event_type
        attributes["safety_chain.audit.seq"] = proof.seq
        if proof.tree_size is not None:
            attributes["safety_chain.audit.tree_size"] = proof.tree_size
            attributes["safety_chain.audit.inclusion"] = proof.inclusion
        moment = _epoch_ms(record.event_time)
        counts.written += 1
        yield json_line(
            {
                "trace_id": record.correlation_id,
                "span_id": _span_id(record),
                "status": "Error" if record.decision == "unreadable" else "Unset",
                "name": action_names(record)[0],
                "start_time": moment,
                "end_time": moment,
                "resource": {"attributes": resource},
                "attributes": attributes,
            }
        )
