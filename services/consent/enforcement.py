"""Enforcement of one accepted signal: a decision per candidate recipient, and for each permit
a delivery minimised to the agreed fields and sealed to that recipient's X25519 key.

Returns what happened, as events: the transport has the record writer sign them and produces
them atomically with the consumed offset. Nothing here touches Kafka.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.consent.decision import Outcome, SignalFacts, decide
from shared.contracts.agreements import Agreement, Directive
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.pseudonyms import delivery_id, partner_pseudonym, recipient_trace_id
from shared.contracts.crypto.sealing import (
    b64decode,
    b64encode,
    delivery_context,
    personal_payload_context,
    seal,
)
from shared.contracts.emitted import Emitted
from shared.contracts.events import (
    Decision,
    ErasureForwarded,
    ErasureNotice,
    Event,
    ExchangeDecided,
    ProvidedTo,
    SealedPayload,
    SignalAccepted,
    SignalDelivered,
    SubjectErased,
    SubjectRecipients,
)
from shared.contracts.personal import PersonalPayload
from shared.contracts.reasons import Reason, ReasonCode
from shared.contracts.registry import Registry

SERVICE_ID = "consent"
ERASED = Reason(ReasonCode.ERASED).text


def available_fields(accepted: SignalAccepted, personal: PersonalPayload) -> dict[str, Any]:
    """Every deliverable field by its agreement name (see agreements.DELIVERABLE_FIELDS), with
    its value as JSON (as it is sealed to the recipient)."""
    subject: dict[str, Any] = personal.subject.model_dump(mode="json")
    attributes = personal.attributes
    address = {key: subject.get(key) for key in ("postcode", "house_number", "house_letter", "addition")}
    fields: dict[str, Any] = {
        "municipality": accepted.municipality,
        "category": accepted.category.value,
        "severity": accepted.severity.value,
        "occurred_at": accepted.occurred_at.isoformat(),
        "purpose": accepted.purpose,
        "summary": personal.summary,
        "attributes": attributes,
        "subject.kind": subject.get("kind"),
        "subject.name": subject.get("name"),
        "subject.bsn": subject.get("bsn"),
        "subject.birth_date": subject.get("birth_date"),
        "subject.address": address if subject.get("kind") == "address" else None,
        "subject.kvk_number": subject.get("kvk_number"),
        "subject.trade_name": subject.get("trade_name"),
    }
    fields.update({f"attributes.{name}": value for name, value in attributes.items()})
    return fields


def minimise(accepted: SignalAccepted, personal: PersonalPayload, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Only the agreed fields that this signal has, by name; everything else is left out."""
    available = available_fields(accepted, personal)
    return {name: available[name] for name in allowed if available.get(name) is not None}


class Enforcer:
    def __init__(self, registry: Registry, partner_pseudonym_key: bytes) -> None:
        self._registry = registry
        self._partner_pseudonym_key = partner_pseudonym_key

    def enforce(
        self,
        accepted: SignalAccepted,
        correlation_id: str,
        data_key: bytes | None,
        agreements: list[Agreement],
        directives: tuple[Directive, ...] = (),
        now: datetime | None = None,
    ) -> list[Emitted[Event]]:
        """Decisions for every candidate recipient, then the deliveries of the permits.

        `data_key` is the subject's data key; None when it was destroyed, which turns every
        permit into a deny: an erased subject's data is never delivered.
        """
        now = now or datetime.now(UTC)
        facts = SignalFacts(accepted.municipality, accepted.category, accepted.purpose)
        decisions: list[Emitted[ExchangeDecided]] = []
        deliveries: list[Emitted[SignalDelivered]] = []
        personal: PersonalPayload | None = None
        for recipient in self._registry.partner_ids:
            outcome = decide(facts, recipient, agreements, now, directives)
            if outcome.decision is Decision.PERMIT and data_key is None:
                outcome = Outcome(Decision.DENY, (*outcome.reasons, ERASED))
            decisions.append(self._decision(accepted, recipient, outcome, correlation_id, now))
            if outcome.decision is Decision.PERMIT:
                assert data_key is not None
                if personal is None:  # decrypted only when some recipient may receive it
                    personal = self._open(accepted, data_key)
                deliveries.append(self._delivery(accepted, recipient, outcome, personal, correlation_id))
        # Every decision precedes every delivery: the audit trail reads decided, then delivered.
        return [*decisions, *deliveries]

    @staticmethod
    def _open(accepted: SignalAccepted, data_key: bytes) -> PersonalPayload:
        """The signal's personal payload. Raises (as for any record whose processing fails, see
        shared/plumbing/transactional.py) when it does not decrypt or is no PersonalPayload."""
        context = personal_payload_context(str(accepted.signal_id), accepted.subject_pseudonym)
        return PersonalPayload.from_bytes(
            datakeys.decrypt(data_key, b64decode(accepted.personal.ciphertext), context)
        )

    def _decision(
        self, accepted: SignalAccepted, recipient: str, outcome: Outcome, correlation_id: str, now: datetime
    ) -> Emitted[ExchangeDecided]:
        agreement = outcome.agreement
        event = ExchangeDecided(
            signal_id=accepted.signal_id,
            municipality=accepted.municipality,
            recipient=recipient,
            category=accepted.category,
            purpose=accepted.purpose,
            subject_pseudonym=accepted.subject_pseudonym,
            decision=outcome.decision,
            reasons=outcome.reasons,
            agreement_id=agreement.id if agreement else None,
            agreement_version=agreement.version if agreement else None,
            legal_basis=str(agreement.legal_basis) if agreement else None,
            fields=outcome.fields,
            decided_at=now,
            delivery_id=self.delivery_id_for(recipient, accepted)
            if outcome.decision is Decision.PERMIT
            else None,
            confidential_until=outcome.confidential_until(now),
        )
        return Emitted(
            event,
            key=str(accepted.signal_id),
            subject=accepted.subject_pseudonym,
            correlation_id=correlation_id,
            extensions={"signalid": str(accepted.signal_id), "recipient": recipient},
            time=now,
        )

    def _delivery(
        self,
        accepted: SignalAccepted,
        recipient: str,
        outcome: Outcome,
        personal: PersonalPayload,
        correlation_id: str,
    ) -> Emitted[SignalDelivered]:
        agreement, obligations = outcome.agreement, outcome.obligations
        assert agreement is not None and obligations is not None
        delivery = self.delivery_id_for(recipient, accepted)
        pseudonym = partner_pseudonym(self._partner_pseudonym_key, recipient, accepted.subject_pseudonym)
        data = minimise(accepted, personal, outcome.fields)
        sealed = seal(
            self._registry.x25519_public(recipient),
            json.dumps(data).encode(),
            delivery_context(str(delivery), recipient),
        )
        retention = min(obligations.retention_days, accepted.retention_days or obligations.retention_days)
        event = SignalDelivered(
            delivery_id=delivery,
            municipality=accepted.municipality,
            recipient=recipient,
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            purpose=accepted.purpose,
            legal_basis=obligations.legal_basis,
            retention_days=retention,
            fields=tuple(data),
            partner_pseudonym=pseudonym,
            payload=SealedPayload(recipient=recipient, ciphertext=b64encode(sealed)),
            delivered_at=datetime.now(UTC),
        )
        # The envelope's time is the delivery's: the audit log orders a trail by it. Every id
        # in it is the recipient's own (delivery id, pseudonym, trace id): nothing to join on.
        return Emitted(
            event,
            key=pseudonym,
            subject=pseudonym,
            correlation_id=recipient_trace_id(self._partner_pseudonym_key, recipient, correlation_id),
            recipient=recipient,
            extensions={
                "deliveryid": str(delivery),
                "recipient": recipient,
                "agreementid": agreement.id,
                "agreementversion": str(agreement.version),
                # The obligations travel in clear headers, so a partner can enforce them unopened.
                "purpose": obligations.purpose,
                "legalbasis": obligations.legal_basis,
                "retentiondays": str(retention),
            },
            time=event.delivered_at,
        )

    def delivery_id_for(self, recipient: str, accepted: SignalAccepted) -> uuid.UUID:
        return delivery_id(self._partner_pseudonym_key, recipient, str(accepted.signal_id))

    # -- erasure notices (AVG art. 17 and 19) --------------------------------------------

    def remembered_recipients(
        self,
        subject: str,
        sequence: int,
        provided: Mapping[str, frozenset[str]],
        correlation_id: str,
    ) -> Emitted[SubjectRecipients]:
        """Consent's memory of `subject`: per municipality that signalled it, who received its
        data. Never a tombstone: an empty record keeps its sequence, so a replayed older record
        cannot bring back recipients an erasure already notified."""
        event = SubjectRecipients(
            subject_pseudonym=subject,
            sequence=sequence,
            provided=tuple(
                ProvidedTo(municipality=municipality, recipients=tuple(sorted(recipients)))
                for municipality, recipients in sorted(provided.items())
            ),
        )
        return Emitted(event, key=subject, subject=subject, correlation_id=correlation_id)

    def erasure_notices(
        self, erased: SubjectErased, recipients: tuple[str, ...], correlation_id: str
    ) -> list[Emitted[Event]]:
        """For every partner that received what was erased (the caller picks them: ADR 0009):
        the notice on its own topic (in its own pseudonym, naming whose data to erase), and the
        internal record that links it to the erasure."""
        emitted: list[Emitted[Event]] = []
        now = datetime.now(UTC)
        subject = erased.subject_pseudonym
        scope = erased.municipality or "*"
        for recipient in sorted(recipients):
            pseudonym = partner_pseudonym(self._partner_pseudonym_key, recipient, subject)
            notice_id = delivery_id(self._partner_pseudonym_key, recipient, f"erasure:{subject}:{scope}")
            forwarded = ErasureForwarded(
                subject_pseudonym=subject,
                recipient=recipient,
                municipality=erased.municipality,
                notice_id=notice_id,
                forwarded_at=now,
            )
            emitted.append(
                Emitted(
                    forwarded,
                    key=subject,
                    subject=subject,
                    correlation_id=correlation_id,
                    extensions={"recipient": recipient},
                    time=now,
                )
            )
            notice = ErasureNotice(
                notice_id=notice_id,
                recipient=recipient,
                partner_pseudonym=pseudonym,
                municipality=erased.municipality,
                erased_at=erased.erased_at,
            )
            emitted.append(
                Emitted(
                    notice,
                    key=pseudonym,
                    subject=pseudonym,
                    correlation_id=recipient_trace_id(self._partner_pseudonym_key, recipient, correlation_id),
                    recipient=recipient,
                    extensions={"noticeid": str(notice_id), "recipient": recipient},
                    time=now,
                )
            )
        return emitted
