"""Enforcement of one accepted signal: a decision per candidate recipient, and for each permit
a delivery minimised to the agreed fields and sealed to that recipient's X25519 key.

Returns the records to produce; the transport produces them atomically with the consumed
offset. Nothing here touches Kafka.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.consent.agreements import Agreement
from services.consent.decision import Outcome, SignalFacts, decide
from shared.contracts.events import (
    Decision,
    Event,
    ExchangeDecided,
    SealedPayload,
    SignalAccepted,
    SignalDelivered,
)
from shared.crypto.pseudonyms import partner_pseudonym
from shared.crypto.sealing import (
    b64decode,
    b64encode,
    delivery_context,
    open_sealed,
    personal_payload_context,
    seal,
)
from shared.envelope import Envelope, Headers
from shared.registry import Registry
from shared.topics import EXCHANGE_DECISIONS, partner_topic

SERVICE_ID = "consent"


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def minimise(accepted: SignalAccepted, personal: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Only the agreed fields, by name; everything else is left out."""
    available: dict[str, Any] = {
        "municipality": accepted.municipality,
        "category": accepted.category.value,
        "severity": accepted.severity.value,
        "occurred_at": accepted.occurred_at.isoformat(),
        "purpose": accepted.purpose,
        "summary": personal.get("summary"),
        "attributes": personal.get("attributes", {}),
        "subject.name": personal.get("subject", {}).get("name"),
        "subject.bsn": personal.get("subject", {}).get("bsn"),
    }
    return {name: available[name] for name in fields}


class Enforcer:
    def __init__(
        self,
        registry: Registry,
        agreements: list[Agreement],
        private_key: X25519PrivateKey,
        partner_pseudonym_key: bytes,
        topic_prefix: str,
    ) -> None:
        self._registry = registry
        self._agreements = agreements
        self._private_key = private_key
        self._partner_pseudonym_key = partner_pseudonym_key
        self._prefix = topic_prefix

    def enforce(
        self, accepted: SignalAccepted, correlation_id: str, now: datetime | None = None
    ) -> list[OutgoingRecord]:
        now = now or datetime.now(UTC)
        signal_id = str(accepted.signal_id)
        facts = SignalFacts(accepted.municipality, accepted.category, accepted.purpose)
        decisions: list[OutgoingRecord] = []
        deliveries: list[OutgoingRecord] = []
        personal: dict[str, Any] | None = None
        for recipient in self._registry.partner_ids:
            outcome = decide(facts, recipient, self._agreements, now)
            decisions.append(self._decision_record(accepted, recipient, outcome, correlation_id, now))
            if outcome.decision is Decision.PERMIT:
                if personal is None:  # opened only when some recipient may receive it
                    personal = json.loads(
                        open_sealed(
                            self._private_key,
                            b64decode(accepted.personal.ciphertext),
                            personal_payload_context(signal_id, SERVICE_ID),
                        )
                    )
                deliveries.append(
                    self._delivery_record(accepted, recipient, outcome, personal, correlation_id)
                )
        # Every decision precedes every delivery: the audit trail reads decided, then delivered.
        return decisions + deliveries

    def _record(self, topic: str, key: str, event: Event, envelope: Envelope) -> OutgoingRecord:
        return OutgoingRecord(topic, key.encode(), event.to_bytes(), envelope.to_headers())

    def _decision_record(
        self, accepted: SignalAccepted, recipient: str, outcome: Outcome, correlation_id: str, now: datetime
    ) -> OutgoingRecord:
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
        )
        envelope = Envelope(
            source=SERVICE_ID,
            type=ExchangeDecided.event_type,
            time=now,
            subject=accepted.subject_pseudonym,
            correlation_id=correlation_id,
            extensions={"signalid": str(accepted.signal_id), "recipient": recipient},
        )
        return self._record(
            EXCHANGE_DECISIONS.prefixed(self._prefix), str(accepted.signal_id), event, envelope
        )

    def _delivery_record(
        self,
        accepted: SignalAccepted,
        recipient: str,
        outcome: Outcome,
        personal: dict[str, Any],
        correlation_id: str,
    ) -> OutgoingRecord:
        agreement = outcome.agreement
        assert agreement is not None
        signal_id = str(accepted.signal_id)
        pseudonym = partner_pseudonym(self._partner_pseudonym_key, recipient, accepted.subject_pseudonym)
        payload = json.dumps(minimise(accepted, personal, outcome.fields)).encode()
        sealed = seal(
            self._registry.x25519_public(recipient), payload, delivery_context(signal_id, recipient)
        )
        retention = min(agreement.retention_days, accepted.retention_days or agreement.retention_days)
        event = SignalDelivered(
            signal_id=accepted.signal_id,
            municipality=accepted.municipality,
            recipient=recipient,
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            purpose=accepted.purpose,
            legal_basis=str(agreement.legal_basis),
            retention_days=retention,
            fields=outcome.fields,
            partner_pseudonym=pseudonym,
            payload=SealedPayload(recipient=recipient, ciphertext=b64encode(sealed)),
            delivered_at=datetime.now(UTC),
        )
        # The envelope's time is the delivery's: the audit log orders a trail by it.
        envelope = Envelope(
            source=SERVICE_ID,
            type=SignalDelivered.event_type,
            time=event.delivered_at,
            subject=pseudonym,
            correlation_id=correlation_id,
            extensions={
                "signalid": signal_id,
                "recipient": recipient,
                "agreementid": agreement.id,
                "agreementversion": str(agreement.version),
            },
        )
        return self._record(partner_topic(recipient).prefixed(self._prefix), pseudonym, event, envelope)
