"""What LDV and VWL both say of a record: who performed it and on whose call, which processing
activity it belongs to, its name in words, and which pseudonym names its subject. Per event
type, each follows from the type's row in the catalogue (services/audit/log/catalogue.py)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from services.audit.log.catalogue import (
    EXCHANGE,
    UNREADABLE_NAMES,
    UNREADABLE_TYPE,
    CalledBy,
    Names,
    row_of,
)
from services.audit.log.facts import FLAGGED_DECISIONS
from services.audit.log.record import AuditRecord
from shared.contracts.envelope import TYPE_PREFIX
from shared.contracts.registry import Organisation, OrganisationKind, Registry, UnknownOrganisationError

SUBJECT_ID_TYPE: Final = "safety-chain-pseudoniem"
"""What `subject_pseudonym` is on most records: the platform's keyed pseudonym of the subject
(shared.contracts.crypto.pseudonyms; HMAC-SHA256 of the subject's kind and BSN, postcode or KvK
number)."""
PARTNER_SUBJECT_ID_TYPE: Final = "safety-chain-partnerpseudoniem"
"""What it is on a partner's side of an exchange: that partner's own pseudonym of the subject."""

ACCOUNTABILITY: Final = "Verantwoording"
"""VWL's handeling and verwerking of what the log does for itself (a type it has no row for)."""


def organisation_named(registry: Registry, org_id: str | None) -> Organisation | None:
    if not org_id:
        return None
    try:
        return registry.get(org_id)
    except UnknownOrganisationError:
        return None


def _platform(registry: Registry) -> Organisation | None:
    operators = registry.of_kind(OrganisationKind.PLATFORM)
    return operators[0] if operators else None


def performed_by(record: AuditRecord, registry: Registry) -> tuple[Organisation | None, str | None]:
    """The organisation that performed what the record states, and its system: the one that may
    write its type (the catalogue's writers, derived from the topic table: a service, or the
    partner for its own receipt), the audit service for a record it flagged. Where two services
    may write a type, the platform operator, no system."""
    row = row_of(record.event_type)
    if record.decision in FLAGGED_DECISIONS or record.event_type == UNREADABLE_TYPE:
        writer: str | None = "audit"
    elif row is not None:
        writers = row.writers.of(record.source)
        writer = next(iter(writers)) if len(writers) == 1 else None
    else:
        writer = None
    performer = organisation_named(registry, writer)
    if performer is None:
        return _platform(registry), None
    return performer, performer.source.system


def called_by(record: AuditRecord, registry: Registry, performer: Organisation | None) -> Organisation | None:
    """The other organisation whose call caused the record, if any (never for a flagged record:
    its source is a claim nobody proved)."""
    row = row_of(record.event_type)
    if record.decision in FLAGGED_DECISIONS or performer is None or row is None:
        return None
    if row.called_by is CalledBy.CONSENT:
        caller = organisation_named(registry, "consent")
    elif row.called_by is CalledBy.SOURCE:
        caller = organisation_named(registry, record.source)
    else:
        return None
    return caller if caller is not None and caller.oin != performer.oin else None


def processing_activity(record: AuditRecord, register_url: str) -> str:
    """The URI of the processing activity a record belongs to, in the register at
    `register_url`: for an exchange under an agreement, that agreement's version
    (<register>/convenanten/<agreement id>/v<version>; LDV: each version of an activity has its
    own identifier); otherwise the platform's own activity for the event type
    (<register>/platform/<type without prefix and version>, e.g. .../platform/signal.accepted)."""
    base = register_url.rstrip("/")
    row = row_of(record.event_type)
    if record.agreement_id and row is not None and row.under_agreement:
        uri = f"{base}/convenanten/{quote(record.agreement_id, safe='')}"
        version = record.agreement_version
        return f"{uri}/v{version}" if version is not None else uri
    name = re.sub(r"\.v\d+$", "", (record.event_type or "unknown").removeprefix(TYPE_PREFIX))
    return f"{base}/platform/{quote(name, safe='.-_')}"


def _names(record: AuditRecord) -> Names:
    if record.event_type == UNREADABLE_TYPE:
        return UNREADABLE_NAMES
    row = row_of(record.event_type)
    return row.names if row else Names(record.event_type, ACCOUNTABILITY, ACCOUNTABILITY)


def action_names(record: AuditRecord) -> tuple[str, str, str]:
    """(actieNaam, handelingNaam, verwerkingNaam): the type's names, the action with the record's
    decision, the exchange with the signal's category."""
    names = _names(record)
    action, processing = names.action, names.processing
    if record.decision:
        action = f"{action} ({record.decision})"
    if processing == EXCHANGE and record.category:
        processing = f"{processing} {record.category}"
    return action[:242], names.handling, processing[:242]  # maxLength 242 in the VWL OpenAPI


def subject_id_type(record: AuditRecord) -> str:
    """Which pseudonym the record's `subject_pseudonym` is."""
    row = row_of(record.event_type)
    return PARTNER_SUBJECT_ID_TYPE if row is not None and row.partner_side else SUBJECT_ID_TYPE


def provides_data(record: AuditRecord) -> bool:
    """Whether the record provides data to its target (VWL's afnemer)."""
    row = row_of(record.event_type)
    return row is not None and row.provides_data
