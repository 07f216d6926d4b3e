"""Exports of audit-log queries: NDJSON, CSV, Logboek Dataverwerkingen (LDV) and VNG
Verwerkingenlogging (VWL), each record with a reference to its inclusion proof.

Pure and streaming: every writer takes an iterable of audit records as the stores return them
(services.audit.log.store; times RFC 3339 strings, `fields` and `reasons` lists) and yields text
chunks, one line (one CSV row) at a time, so a large export never sits in memory. Nothing here
reads a store: the caller passes the size of the newest checkpoint (`ExportContext`).

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

Confidentiality: an agreement may mark an exchange confidential (police, public prosecutor)
until a date; the decision record carries `confidential_until`. The records that follow from
that decision (the delivery, the partner's receipt) name the same `delivery_id`; within one
export they take the decision's date, so a citizen's export does not show the delivery of a
decision it withholds. A delivery exported without its decision cannot be recognised here.

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

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

from services.audit.log.facts import FLAGGED_DECISIONS, WRITERS, AuditFact, is_fact
from shared.contracts.agreements import AgreementProposed, AgreementPublished, SubjectDirectives
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.events import (
    AuditRead,
    ErasureForwarded,
    ErasureNotice,
    ExchangeDecided,
    ExchangeReceipt,
    SignalAccepted,
    SignalDelivered,
    SignalRejected,
    SubjectErased,
)
from shared.contracts.registry import Organisation, OrganisationKind, Registry, UnknownOrganisationError

Record = Mapping[str, Any]

RECORD_FIELDS: Final = ("seq", "recorded_at", *AuditFact.model_fields)
"""The audit record's fields, in this order, in NDJSON and CSV: an allowlist, so a column a
store keeps beside the record (a leaf hash) never leaves."""

UNREADABLE_TYPE: Final = TYPE_PREFIX + "audit.unreadable.v1"  # services.audit.log.facts.unreadable_fact

SUBJECT_ID_TYPE: Final = "safety-chain-pseudoniem"
"""What `subject_pseudonym` is on most records: the platform's keyed pseudonym of the subject
(shared.contracts.crypto.pseudonyms; HMAC-SHA256 of the subject's kind and BSN, postcode or KvK number)."""
PARTNER_SUBJECT_ID_TYPE: Final = "safety-chain-partnerpseudoniem"
"""What it is on the records a partner sees: that partner's own pseudonym of the subject."""
PARTNER_PSEUDONYM_EVENTS: Final = frozenset(
    {SignalDelivered.event_type, ExchangeReceipt.event_type, ErasureNotice.event_type}
)

DEFAULT_BEWAARTERMIJN: Final = "P10Y"
"""VWL `bewaartermijn` when the caller's retention lookup gives none. The retention of the log
entry, not of the data (VWL B9559: the log's term is the application's to set, not the
register's). P10Y is the standard's own example value, not a legal determination: give a lookup
that follows the municipality's archive rules, or None to leave the field out (VWL: "verplicht
indien te bepalen")."""

DEVELOPMENT_REGISTER_URL: Final = "https://register.safetychain.example/verwerkingsactiviteiten"
"""A register base URL for development only (like the 99999999 OINs): set the real register of
processing activities (verwerkingsactiviteitenregister) in production."""

EXPORT_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://safetychain.nl/audit/exports")
"""The namespace of the name-based (version 5) UUIDs exports derive."""

_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_ACTOR = re.compile(r"^(?:(?:proposed|approved|rejected|pending) )?by (?P<actor>\S.*)$")
"""A reason that names who acted (services.audit.log.facts: agreement changes, proposals,
directives, erasures, reads); "not signed by <organisation>" is no actor."""

RetentionLookup = Callable[[Record], str | None]
"""A record -> its VWL `bewaartermijn` (ISO 8601 duration such as P10Y), or None: the default."""
ProcessorUrl = Callable[[Organisation], str]
"""An organisation -> the URL of its application, for LDV `dpl.core.foreign_operation.processor`."""


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


@dataclass(frozen=True)
class ProofReference:
    """Where a record's inclusion proof is: its `seq`, the size of the newest checkpoint that
    covers it (None while no checkpoint does yet) and the audit API's relative URL of the proof
    in that tree (None without a covering checkpoint: a proof needs a signed tree to hold on to)."""

    seq: int
    tree_size: int | None

    @classmethod
    def of(cls, seq: int, checkpoint_size: int | None) -> ProofReference:
        """`checkpoint_size`: the newest checkpoint's tree size, or None when there is none."""
        covered = checkpoint_size is not None and seq <= checkpoint_size
        return cls(seq, checkpoint_size if covered else None)

    @property
    def inclusion(self) -> str | None:
        if self.tree_size is None:
            return None
        return f"/v1/audit/records/{self.seq}/inclusion?tree_size={self.tree_size}"

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "tree_size": self.tree_size, "inclusion": self.inclusion}


@dataclass(frozen=True)
class ExportContext:
    """What every format needs besides the records.

    registry: organisations (OIN, system) by id. register_url: base URL of the register of
    processing activities (no trailing slash needed). today: the date confidentiality is judged
    on. checkpoint_size: the newest checkpoint's tree size (None: no checkpoint yet). citizen:
    the citizen's version (see the module). retention: VWL bewaartermijn per record, falling back
    to default_retention (None: left out). processor_url: the URL of an organisation's
    application for LDV; default its CloudEvents source URN (see `ldv`)."""

    registry: Registry
    register_url: str
    today: date
    checkpoint_size: int | None = None
    citizen: bool = False
    retention: RetentionLookup | None = None
    default_retention: str | None = DEFAULT_BEWAARTERMIJN
    processor_url: ProcessorUrl | None = None

    def __post_init__(self) -> None:
        if not self.register_url.startswith(("https://", "http://")):
            raise ValueError("register_url must be an absolute http(s) URL")
        if self.default_retention is not None and not _ISO_DURATION.match(self.default_retention):
            raise ValueError(f"default_retention {self.default_retention!r} is no ISO 8601 duration")


@dataclass
class ExportCounts:
    """What an export did, filled in as it streams (e.g. for a progress bar or a summary)."""

    written: int = 0
    withheld: int = 0  # citizen's version: still vertrouwelijk (VWL: also without a subject)
    without_subject: int = 0  # LDV: no data subject, so no log line


def retention_days(days: int) -> str:
    """An ISO 8601 duration of whole days (e.g. an agreement's retention_days)."""
    if days < 1:
        raise ValueError("a retention is at least one day")
    return f"P{days}D"


# --- what every format shares -------------------------------------------------------------


class _Confidentiality:
    """Per export: a decision's `confidential_until` also holds for the records that name its
    delivery id (delivery, receipt), which do not carry the date themselves."""

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


def _selected(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts
) -> Iterator[tuple[Record, Vertrouwelijkheid]]:
    """Every verified fact with its confidentiality (what the log flagged is no fact to export:
    services.audit.log.facts.is_fact); the citizen's version without the confidential."""
    confidentiality = _Confidentiality(context.today)
    for record in records:
        if not is_fact(record):
            continue
        level = confidentiality.of(record)
        if context.citizen and level is Vertrouwelijkheid.VERTROUWELIJK:
            counts.withheld += 1
            continue
        yield record, level


def _actor(reason: str) -> str | None:
    match = _ACTOR.match(reason)
    return match.group("actor") if match else None


def _reasons(record: Record, context: ExportContext) -> list[str]:
    reasons = [str(reason) for reason in record.get("reasons") or ()]
    return [reason for reason in reasons if _actor(reason) is None] if context.citizen else reasons


def _proof(record: Record, context: ExportContext) -> ProofReference:
    return ProofReference.of(int(record["seq"]), context.checkpoint_size)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def _line(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_jsonable) + "\n"


def _record_document(record: Record, context: ExportContext) -> dict[str, Any]:
    document = {name: record.get(name) for name in RECORD_FIELDS}
    document["fields"] = [str(name) for name in record.get("fields") or ()]
    document["reasons"] = _reasons(record, context)
    if isinstance(document["confidential_until"], date):
        document["confidential_until"] = document["confidential_until"].isoformat()
    return document


def _organisation(registry: Registry, org_id: str | None) -> Organisation | None:
    if not org_id:
        return None
    try:
        return registry.get(org_id)
    except UnknownOrganisationError:
        return None


def _platform(registry: Registry) -> Organisation | None:
    operators = registry.of_kind(OrganisationKind.PLATFORM)
    return operators[0] if operators else None


def _writer(record: Record, registry: Registry) -> tuple[Organisation | None, str | None]:
    """The organisation that performed what the record states, and its system: the service that
    wrote it (services.audit.log.facts.WRITERS), the partner for its receipt, the audit service for a
    record it flagged. Where two services may write a type, the platform operator, no system."""
    event_type = record.get("event_type")
    if record.get("decision") in FLAGGED_DECISIONS or event_type == UNREADABLE_TYPE:
        writer: str | None = "audit"
    elif event_type == ExchangeReceipt.event_type:
        writer = record.get("source")
    else:
        writers = WRITERS.get(str(event_type), frozenset())
        writer = next(iter(writers)) if len(writers) == 1 else None
    organisation = _organisation(registry, writer)
    if organisation is None:
        return _platform(registry), None
    return organisation, organisation.source.system


CALLED_BY_SOURCE: Final = frozenset(
    {
        SignalAccepted.event_type,  # a municipality submitted the signal
        SignalRejected.event_type,
        SubjectErased.event_type,  # an organisation asked for the erasure
        AgreementPublished.event_type,  # an organisation published or proposed a change
        AgreementProposed.event_type,
        SubjectDirectives.event_type,  # an organisation recorded a directive
        AuditRead.event_type,  # an organisation read the log
    }
)
"""Records whose writer acted on a call from the record's `source`. A receipt answers the
platform's delivery; decisions, deliveries and erasure notices follow the platform's own records."""


def _caller(record: Record, registry: Registry, writer: Organisation | None) -> Organisation | None:
    """The other organisation whose call caused the record, if any (never for a flagged record:
    its source is a claim nobody proved)."""
    event_type = record.get("event_type")
    if record.get("decision") in FLAGGED_DECISIONS or writer is None:
        return None
    if event_type == ExchangeReceipt.event_type:
        caller = _organisation(registry, "consent")
    elif event_type in CALLED_BY_SOURCE:
        caller = _organisation(registry, record.get("source"))
    else:
        return None
    return caller if caller is not None and caller.oin != writer.oin else None


_EXCHANGE_EVENTS: Final = frozenset(
    {ExchangeDecided.event_type, SignalDelivered.event_type, ExchangeReceipt.event_type}
)


def processing_activity(record: Record, register_url: str) -> str:
    """The URI of the processing activity a record belongs to, in the register at
    `register_url`: for an exchange under an agreement, that agreement's version
    (<register>/convenanten/<agreement id>/v<version>; LDV: each version of an activity has its
    own identifier); otherwise the platform's own activity for the event type
    (<register>/platform/<type without prefix and version>, e.g. .../platform/signal.accepted)."""
    base = register_url.rstrip("/")
    agreement = record.get("agreement_id")
    if agreement and record.get("event_type") in _EXCHANGE_EVENTS:
        uri = f"{base}/convenanten/{quote(str(agreement), safe='')}"
        version = record.get("agreement_version")
        return f"{uri}/v{int(version)}" if version is not None else uri
    name = re.sub(r"\.v\d+$", "", str(record.get("event_type") or "unknown").removeprefix(TYPE_PREFIX))
    return f"{base}/platform/{quote(name, safe='.-_')}"


# (actieNaam, handelingNaam, verwerkingNaam) per event type, in Dutch like the standard.
_NAMES: Final[dict[str, tuple[str, str, str]]] = {
    SignalAccepted.event_type: ("Signaal geaccepteerd", "Intake", "Signaaluitwisseling"),
    SignalRejected.event_type: ("Signaal geweigerd", "Intake", "Signaaluitwisseling"),
    ExchangeDecided.event_type: ("Besluit over delen", "Besluit", "Signaaluitwisseling"),
    SignalDelivered.event_type: ("Signaal geleverd", "Levering", "Signaaluitwisseling"),
    ExchangeReceipt.event_type: ("Ontvangstbevestiging", "Ontvangst", "Signaaluitwisseling"),
    SubjectErased.event_type: ("Gegevens gewist", "Wissen", "Wissen op verzoek"),
    ErasureForwarded.event_type: ("Wisverzoek doorgezet", "Wissen", "Wissen op verzoek"),
    ErasureNotice.event_type: ("Wisverzoek aan ontvanger", "Wissen", "Wissen op verzoek"),
    AgreementPublished.event_type: ("Convenant gepubliceerd", "Convenantbeheer", "Convenantbeheer"),
    AgreementProposed.event_type: ("Convenantwijziging voorgesteld", "Convenantbeheer", "Convenantbeheer"),
    SubjectDirectives.event_type: (
        "Toestemming of bezwaar vastgelegd",
        "Voorkeuren",
        "Toestemming en bezwaar",
    ),
    AuditRead.event_type: ("Auditlog ingezien", "Inzage", "Verantwoording"),
    UNREADABLE_TYPE: ("Onleesbaar record vastgelegd", "Verantwoording", "Verantwoording"),
}


def _names(record: Record) -> tuple[str, str, str]:
    event_type = str(record.get("event_type"))
    action, handling, processing = _NAMES.get(event_type, (event_type, "Verantwoording", "Verantwoording"))
    if record.get("decision"):
        action = f"{action} ({record['decision']})"
    if processing == "Signaaluitwisseling" and record.get("category"):
        processing = f"{processing} {record['category']}"
    return action[:242], handling, processing[:242]  # maxLength 242 in the VWL OpenAPI


def _span_id(record: Record) -> str:
    """8 bytes, hex: derived from the event id; a flagged record may repeat a genuine record's
    id (a replay), so its Kafka provenance is mixed in."""
    key = str(record.get("event_id"))
    if record.get("decision") in FLAGGED_DECISIONS:
        key += f"|{record.get('kafka_topic')}|{record.get('kafka_partition')}|{record.get('kafka_offset')}"
    digest = hashlib.sha256(b"safety-chain ldv span\x00" + key.encode()).digest()
    span = digest[:8] if any(digest[:8]) else digest[8:16]  # W3C: an all-zero id is invalid
    return span.hex()


def _epoch_ms(value: Any) -> int:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# --- the writers ----------------------------------------------------------------------------


def ndjson(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """One JSON object per line: the record's `RECORD_FIELDS` plus `proof`
    (ProofReference.as_dict)."""
    counts = counts if counts is not None else ExportCounts()
    for record, _ in _selected(records, context, counts):
        document = _record_document(record, context)
        document["proof"] = _proof(record, context).as_dict()
        counts.written += 1
        yield _line(document)


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


def csv_rows(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts | None = None
) -> Iterator[str]:
    """A header row (`CSV_HEADER`), then one row per record (RFC 4180, CRLF line ends)."""
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
    for record, _ in _selected(records, context, counts):
        document = _record_document(record, context)
        proof = _proof(record, context)
        counts.written += 1
        yield row([*(document[name] for name in RECORD_FIELDS), proof.tree_size, proof.inclusion])


def ldv(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts | None = None
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
    - attributes: dpl.core.processing_activity_id (`processing_activity`),
      dpl.core.data_subject_id (the pseudonym, nothing else), dpl.core.data_subject_id_type
      (`SUBJECT_ID_TYPE` or `PARTNER_SUBJECT_ID_TYPE`), and when another organisation's call
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
    for record, _ in _selected(records, context, counts):
        subject = record.get("subject_pseudonym")
        if not subject:
            counts.without_subject += 1
            continue
        event_type = str(record.get("event_type"))
        writer, system = _writer(record, registry)
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
            "dpl.core.data_subject_id": str(subject),
            "dpl.core.data_subject_id_type": (
                PARTNER_SUBJECT_ID_TYPE if event_type in PARTNER_PSEUDONYM_EVENTS else SUBJECT_ID_TYPE
            ),
        }
        caller = _caller(record, registry, writer)
        if caller is not None:
            attributes["dpl.core.foreign_operation.processor"] = (
                context.processor_url(caller) if context.processor_url else caller.source.urn
            )
        proof = _proof(record, context)
        attributes["safety_chain.audit.event_type"] = event_type
        attributes["safety_chain.audit.seq"] = proof.seq
        if proof.tree_size is not None:
            attributes["safety_chain.audit.tree_size"] = proof.tree_size
            attributes["safety_chain.audit.inclusion"] = proof.inclusion
        moment = _epoch_ms(record["event_time"])
        counts.written += 1
        yield _line(
            {
                "trace_id": str(record["correlation_id"]),
                "span_id": _span_id(record),
                "status": "Error" if record.get("decision") == "unreadable" else "Unset",
                "name": _names(record)[0],
                "start_time": moment,
                "end_time": moment,
                "resource": {"attributes": resource},
                "attributes": attributes,
            }
        )


VWL_PROOF: Final = "x-safety-chain-proof"
"""The proof reference in a VWL verwerkingsactie: an extension property, `x-` like OpenAPI
extensions, never one of the standard's names."""

PROVISIONS: Final = frozenset({SignalDelivered.event_type, ErasureNotice.event_type})
"""Records that provide data to their `target`: VWL's afnemer ("bij levering van gegevens")."""


def _exchange_uuid(record: Record) -> str:
    """The exchange's correlation id (32 hex digits, the W3C trace id) written as a UUID."""
    trace = str(record.get("correlation_id"))
    if re.fullmatch(r"[0-9a-f]{32}", trace):
        return str(uuid.UUID(hex=trace))
    return str(uuid.uuid5(EXPORT_NAMESPACE, f"trace:{trace}"))  # never written by a producer here


def _retention(record: Record, context: ExportContext) -> str | None:
    term = context.retention(record) if context.retention else None
    if term is None:
        return context.default_retention
    if not _ISO_DURATION.match(term):
        raise ValueError(f"retention {term!r} is no ISO 8601 duration")
    return term


def _user(record: Record) -> str | None:
    """VWL `gebruiker`: who started the action, as its reasons name them (the first actor: the
    proposer of an agreement change, the one who recorded, erased or read). Left out when longer
    than the standard's 40 characters rather than cut to someone else's name."""
    for reason in record.get("reasons") or ():
        actor = _actor(str(reason))
        if actor is not None:
            return actor if len(actor) <= 40 else None
    return None


def vwl(
    records: Iterable[Record], context: ExportContext, counts: ExportCounts | None = None
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
      pseudonym `objectId` is (see `SUBJECT_ID_TYPE`); `verwerkteSoortenGegevens` holds one
      `{"soortGegeven": name}` per field name.
    - `uitvoerder` (OIN) and `systeem`: the organisation and service that performed the action
      (as in `ldv`). `gegevensbron`: the Kafka topic that holds the record. `gebruiker`: see
      `_user`; officer's version only. `soortAfnemerId` ("OIN") and `afnemerId`: the recipient
      of a delivery or erasure notice. The recipient's own ids (verwerkingsactiviteitIdAfnemer,
      verwerkingsactiviteitUrlAfnemer, verwerkingIdAfnemer) are the recipient's: not known here,
      left out.
    - `bewaartermijn`: `ExportContext.retention`, else `default_retention`.
    - `tijdstip`: the event's time; `tijdstipRegistratie`: when the audit log recorded it.
    """
    counts = counts if counts is not None else ExportCounts()
    registry = context.registry
    for record, level in _selected(records, context, counts):
        subject = record.get("subject_pseudonym")
        if context.citizen and not subject:
            counts.withheld += 1  # a citizen reads by object: an action without one is not theirs
            continue
        action, handling, processing = _names(record)
        activity = processing_activity(record, context.register_url)
        writer, system = _writer(record, registry)
        recipient = (
            _organisation(registry, record.get("target")) if record.get("event_type") in PROVISIONS else None
        )
        objects = (
            [
                {
                    "objecttype": "persoon",
                    "soortObjectId": (
                        PARTNER_SUBJECT_ID_TYPE
                        if record.get("event_type") in PARTNER_PSEUDONYM_EVENTS
                        else SUBJECT_ID_TYPE
                    ),
                    "objectId": str(subject),
                    "betrokkenheid": "betrokkene",
                    "verwerkteSoortenGegevens": [
                        {"soortGegeven": str(name)} for name in record.get("fields") or ()
                    ],
                }
            ]
            if subject
            else []
        )
        action_document: dict[str, Any] = {
            "actieId": str(
                uuid.uuid5(
                    EXPORT_NAMESPACE,
                    f"actie:{record.get('kafka_topic')}:{record.get('kafka_partition')}:{record.get('kafka_offset')}",
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
            "gegevensbron": None if context.citizen else record.get("kafka_topic"),
            "soortAfnemerId": "OIN" if recipient is not None else None,
            "afnemerId": recipient.oin if recipient is not None else None,
            "tijdstip": record["event_time"],
            "tijdstipRegistratie": record["recorded_at"],
            "verwerkteObjecten": objects,
        }
        document = {name: value for name, value in action_document.items() if value is not None}
        document[VWL_PROOF] = _proof(record, context).as_dict()
        counts.written += 1
        yield _line(document)


_WRITERS: Final[
    dict[Format, Callable[[Iterable[Record], ExportContext, ExportCounts | None], Iterator[str]]]
] = {
    Format.NDJSON: ndjson,
    Format.CSV: csv_rows,
    Format.LDV: ldv,
    Format.VWL: vwl,
}


def render(
    format: Format | str,
    records: Iterable[Record],
    context: ExportContext,
    counts: ExportCounts | None = None,
) -> Iterator[str]:
    """The export of `records` in `format` (a Format or its name), streamed in text chunks."""
    return _WRITERS[Format(format)](records, context, counts)
