"""The intake use case: one submission in, one accepted or rejected event out.

Every channel (HTTP today, the Kafka intake topic next) calls `Intake.submit`, so all
channels validate and publish alike. The BSN and name never leave this module in clear:
the subject becomes a keyed pseudonym and the personal payload is sealed to the consent
service, the only party that minimises it for a recipient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from services.signals.validation import Invalid, parse_submission
from shared.contracts.events import SealedPayload, SignalAccepted, SignalRejected
from shared.contracts.signal import SignalSubmission
from shared.crypto.pseudonyms import subject_pseudonym
from shared.crypto.sealing import b64encode, personal_payload_context, seal
from shared.envelope import Envelope
from shared.logging import get_logger
from shared.registry import Registry

SERVICE_ID = "signals"
SEAL_RECIPIENT = "consent"
Channel = Literal["http", "kafka"]

log = get_logger()


class EventPublisher(Protocol):
    async def accepted(self, event: SignalAccepted, envelope: Envelope) -> None: ...

    async def rejected(self, event: SignalRejected, envelope: Envelope) -> None: ...


@dataclass(frozen=True)
class Accepted:
    event: SignalAccepted


@dataclass(frozen=True)
class Rejected:
    event: SignalRejected


class Intake:
    def __init__(self, registry: Registry, pseudonym_key: bytes, publisher: EventPublisher) -> None:
        self._registry = registry
        self._pseudonym_key = pseudonym_key
        self._publisher = publisher

    async def submit(self, raw: bytes, channel: Channel, correlation_id: str) -> Accepted | Rejected:
        parsed = parse_submission(raw, self._registry)
        if isinstance(parsed, Invalid):
            return await self._reject(parsed, channel, correlation_id)
        return await self._accept(parsed, correlation_id)

    async def reject(self, invalid: Invalid, channel: Channel, correlation_id: str) -> Rejected:
        """For refusals decided before parsing (size, content type)."""
        return await self._reject(invalid, channel, correlation_id)

    async def _accept(self, submission: SignalSubmission, correlation_id: str) -> Accepted:
        signal_id = str(submission.signal_id)
        pseudonym = subject_pseudonym(self._pseudonym_key, "person", submission.subject.bsn)
        personal = json.dumps(
            {
                "subject": submission.subject.model_dump(mode="json"),
                "summary": submission.summary,
                "attributes": submission.attributes,
            }
        ).encode()
        sealed = seal(
            self._registry.x25519_public(SEAL_RECIPIENT),
            personal,
            personal_payload_context(signal_id, SEAL_RECIPIENT),
        )
        event = SignalAccepted(
            signal_id=submission.signal_id,
            municipality=submission.municipality,
            category=submission.category,
            severity=submission.severity,
            occurred_at=submission.occurred_at,
            purpose=submission.purpose,
            legal_basis=submission.legal_basis,
            retention_days=submission.retention_days,
            classification=submission.classification,
            subject_kind=submission.subject.kind,
            subject_pseudonym=pseudonym,
            accepted_at=datetime.now(UTC),
            personal=SealedPayload(recipient=SEAL_RECIPIENT, ciphertext=b64encode(sealed)),
        )
        envelope = Envelope(
            source=SERVICE_ID,
            type=SignalAccepted.event_type,
            subject=pseudonym,
            correlation_id=correlation_id,
            extensions={"signalid": signal_id},
        )
        await self._publisher.accepted(event, envelope)
        log.info("signal_accepted", signal_id=signal_id, category=event.category, subject=pseudonym)
        return Accepted(event)

    async def _reject(self, invalid: Invalid, channel: Channel, correlation_id: str) -> Rejected:
        event = SignalRejected(
            signal_id=invalid.signal_id,
            municipality=invalid.municipality,
            channel=channel,
            reason=invalid.reason,
            errors=invalid.errors,
            rejected_at=datetime.now(UTC),
        )
        extensions = {"signalid": invalid.signal_id} if invalid.signal_id else {}
        envelope = Envelope(
            source=SERVICE_ID,
            type=SignalRejected.event_type,
            correlation_id=correlation_id,
            extensions=extensions,
        )
        await self._publisher.rejected(event, envelope)
        log.info(
            "signal_rejected",
            reason=event.reason,
            signal_id=invalid.signal_id,
            errors=[error.location for error in invalid.errors],
        )
        return Rejected(event)
