"""What LDV and VWL both say of a record: who performed it and for whom, which processing
activity it belongs to, its name in words, and which pseudonym names its subject."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from services.audit.log.facts import FLAGGED_DECISIONS, WRITERS
from services.audit.log.record import AuditRecord
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

UNREADABLE_TYPE: Final = TYPE_PREFIX + "audit.unreadable.v1"  # services.audit.log.facts.unreadable_fact

SUBJECT_ID_TYPE: Final = "safety-chain-pseudoniem"
"""What `subject_pseudonym` is on most records: the platform's keyed pseudonym of the subject
(shared.contracts.crypto.pseudonyms; HMAC-SHA256 of the subject's kind and BSN, postcode or KvK number)."""
PARTNER_SUBJECT_ID_TYPE: Final = "safety-chain-partnerpseudoniem"
"""What it is on the records a partner sees: that partner's own pseudonym of the subject."""
PARTNER_PSEUDONYM_EVENTS: Final = frozenset(
    {SignalDelivered.event_type, ExchangeReceipt.event_type, ErasureNotice.event_type}
)


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
    """The organisation that performed what the record states, and its system: the service that
    wrote it (services.audit.log.facts.WRITERS), the partner for its receipt, the audit service for a
    record it flagged. Where two services may write a type, the platform operator, no system."""
    event_type = record.event_type
    if record.decision in FLAGGED_DECISIONS or event_type == UNREADABLE_TYPE:
        writer: str | None = "audit"
    elif event_type == ExchangeReceipt.event_type:
        writer = record.source
    else:
        writers = WRITERS.get(str(event_type), frozenset())
        writer = next(iter(writers)) if len(writers) == 1 else None
    performer = organisation_named(registry, writer)
    if performer is None:
        return _platform(registry), None
    return performer, performer.source.system


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


def called_by(record: AuditRecord, registry: Registry, performer: Organisation | None) -> Organisation | None:
    """The other organisation whose call caused the record, if any (never for a flagged record:
    its source is a claim nobody proved)."""
    event_type = record.event_type
    if record.decision in FLAGGED_DECISIONS or performer is None:
        return None
    if event_type == ExchangeReceipt.event_type:
        caller = organisation_named(registry, "consent")
    elif event_type in CALLED_BY_SOURCE:
        caller = organisation_named(registry, record.source)
    else:
        return None
    return caller if caller is not None and caller.oin != performer.oin else None


_EXCHANGE_EVENTS: Final = frozenset(
    {ExchangeDecided.event_type, SignalDelivered.event_type, ExchangeReceipt.event_type}
)


def processing_activity(record: AuditRecord, register_url: str) -> str:
    """The URI of the processing activity a record belongs to, in the register at
    `register_url`: for an exchange under an agreement, that agreement's version
    (<register>/convenanten/<agreement id>/v<version>; LDV: each version of an activity has its
    own identifier); otherwise the platform's own activity for the event type
    (<register>/platform/<type without prefix and version>, e.g. .../platform/signal.accepted)."""
    base = register_url.rstrip("/")
    agreement = record.agreement_id
    if agreement and record.event_type in _EXCHANGE_EVENTS:
        uri = f"{base}/convenanten/{quote(str(agreement), safe='')}"
        version = record.agreement_version
        return f"{uri}/v{int(version)}" if version is not None else uri
    name = re.sub(r"\.v\d+$", "", (record.event_type or "unknown").removeprefix(TYPE_PREFIX))
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


def action_names(record: AuditRecord) -> tuple[str, str, str]:
    event_type = record.event_type
    action, handling, processing = _NAMES.get(event_type, (event_type, "Verantwoording", "Verantwoording"))
    if record.decision:
        action = f"{action} ({record.decision})"
    if processing == "Signaaluitwisseling" and record.category:
        processing = f"{processing} {record.category}"
    return action[:242], handling, processing[:242]  # maxLength 242 in the VWL OpenAPI


def subject_id_type(record: AuditRecord) -> str:
    """Which pseudonym the record's `subject_pseudonym` is."""
    return PARTNER_SUBJECT_ID_TYPE if record.event_type in PARTNER_PSEUDONYM_EVENTS else SUBJECT_ID_TYPE
