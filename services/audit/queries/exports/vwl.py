"""The VNG Verwerkingenlogging (VWL) export: one verwerkingsactie per record, one JSON object
per line."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Final

from services.audit.log.record import AuditRecord
from services.audit.queries.exports.confidentiality import selected
from services.audit.queries.exports.context import ISO_DURATION, ExportContext, ExportCounts
from services.audit.queries.exports.document import actor, json_line
from services.audit.queries.exports.processing import (
    action_names,
    organisation_named,
    performed_by,
    processing_activity,
    provides_data,
    subject_id_type,
)

EXPORT_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://safetychain.nl/audit/exports")
"""The namespace of the name-based (version 5) UUIDs exports derive."""

VWL_PROOF: Final = "x-safety-chain-proof"
"""The proof reference in a VWL verwerkingsactie: an extension property, `x-` like OpenAPI
extensions, never one of the standard's names."""


def _exchange_uuid(record: AuditRecord) -> str:
    """The exchange's correlation id (32 hex digits, the W3C trace id) written as a UUID."""
    trace = record.correlation_id
    if re.fullmatch(r"[0-9a-f]{32}", trace):
        return str(uuid.UUID(hex=trace))
    return str(uuid.uuid5(EXPORT_NAMESPACE, f"trace:{trace}"))  # never written by a producer here


def _retention(record: AuditRecord, context: ExportContext) -> str | None:
    term = context.retention(record) if context.retention else None
    if term is None:
        return context.default_retention
    if not ISO_DURATION.match(term):
        raise ValueError(f"retention {term!r} is no ISO 8601 duration")
    return term


def _user(record: AuditRecord) -> str | None:
    """VWL `gebruiker`: who started the action, as its reasons name them (the first actor: the
    proposer of an agreement change, the one who recorded, erased or read). Left out when longer
    than the standard's 40 characters rather than cut to someone else's name."""
    for reason in record.reasons:
        named = actor(reason)
        if named is not None:
            return named if len(named) <= 40 else None
    return None


def export(
    records: Iterable[AuditRecord], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """VNG Verwerkingenlogging verwerkingsacties, one JSON object per line, with exactly the
    standard's property names (`x-safety-chain-proof` aside) and only those that have a value:
    the OpenAPI types them `string` without `nullable`, so absent is left out, not null.

    From the standard's OpenAPI (where it differs from the handout, it wins):
    - `url` (readOnly, made by the log that stores the action) is not written: it is the
      receiving log's to make. `actieId` is, deterministically (a version 5 UUID of the record's
      Kafka provenance), so importing the same export twice names the same actions.
    - `verwerkingsactiviteitId` is a UUID (format uuid): the version 5 UUID of the activity's URI,
      which is `verwerkingsactiviteitUrl` (`processing_activity`).
    - `verwerkingId` (uuid): the exchange, i.e. the record's correlation id (LDV's trace_id)
      written as a UUID, the same for every action of one exchange.
    - `verwerkteObjecten[].objecttype` is an enum with the one value `persoon`; the subject's
      kind is hidden in its pseudonym, so every object is `persoon`. `soortObjectId` says which
      pseudonym `objectId` is (processing.py `subject_id_type`); `verwerkteSoortenGegevens` holds one
      `{"soortGegeven": name}` per field name.
    - `uitvoerder` (OIN) and `systeem`: the organisation and service that performed the action
      (as in ldv.py). `gegevensbron`: the Kafka topic that holds the record. `gebruiker`: see
      `_user`; officer's version only. `soortAfnemerId` ("OIN") and `afnemerId`: the recipient
      of a delivery or erasure notice. The recipient's own ids (verwerkingsactiviteitIdAfnemer,
      verwerkingsactiviteitUrlAfnemer, verwerkingIdAfnemer) are the recipient's: not known here,
      left out.
    - `bewaartermijn`: `ExportContext.retention`, else `default_retention`.
    - `tijdstip`: the event's time; `tijdstipRegistratie`: when the audit log recorded it.
    """
    counts = counts if counts is not None else ExportCounts()
    registry = context.registry
    for record, level in selected(records, context, counts):
        subject = record.subject_pseudonym
        if context.citizen and not subject:
            counts.withheld += 1  # a citizen reads by object: an action without one is not theirs
            continue
        action, handling, processing = action_names(record)
        activity = processing_activity(record, context.register_url)
        writer, system = performed_by(record, registry)
        recipient = organisation_named(registry, record.target) if provides_data(record) else None
        objects = (
            [
                {
                    "objecttype": "persoon",
                    "soortObjectId": subject_id_type(record),
                    "objectId": subject,
                    "betrokkenheid": "betrokkene",
                    "verwerkteSoortenGegevens": [{"soortGegeven": name} for name in record.fields],
                }
            ]
            if subject
            else []
        )
        action_document: dict[str, Any] = {
            "actieId": str(
                uuid.uuid5(
                    EXPORT_NAMESPACE,
                    f"actie:{record.kafka_topic}:{record.kafka_partition}:{record.kafka_offset}",
                )
            ),
            "actieNaam": action,
            "handelingNaam": handling,
            "verwerkingNaam": processing,
            "verwerkingId": _exchange_uuid(record),
            "verwerkingsactiviteitId": str(uuid.uuid5(EXPORT_NAMESPACE, activity)),
            "verwerkingsactiviteitUrl": activity,
            "vertrouwelijkheid": level.value,
            "bewaartermijn": _retention(record, context),
            "uitvoerder": writer.oin if writer is not None else None,
            "systeem": None if context.citizen else system,
            "gebruiker": None if context.citizen else _user(record),
            "gegevensbron": None if context.citizen else record.kafka_topic,
            "soortAfnemerId": "OIN" if recipient is not None else None,
            "afnemerId": recipient.oin if recipient is not None else None,
            "tijdstip": record.event_time,
            "tijdstipRegistratie": record.recorded_at,
            "verwerkteObjecten": objects,
        }
        document = {name: value for name, value in action_document.items() if value is not None}
        document[VWL_PROOF] = context.proof(record).as_dict()
        counts.written += 1
        yield json_line(document)
