"""The HTTP intake use case: answer the caller synchronously, process through the one pipeline.

A request that is refused on its face (no valid token, wrong content type, too large, not a
valid signal, another municipality's signal, a known signal id) is answered at once and
dead-lettered. A valid one becomes an intake record, signed on behalf of the authenticated
municipality, and the caller gets the pipeline's verdict on it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from services.signals.intake import IntakePipeline
from services.signals.ledger import LedgerEntry, SignalLedger
from services.signals.outcomes import OutcomeBoard
from services.signals.publishing import KafkaGateway
from services.signals.validation import Invalid, parse_submission
from shared.contracts.events import RejectionReason, SignalRejected
from shared.contracts.intake import intake_record
from shared.contracts.registry import Registry
from shared.plumbing.metrics import SIGNALS
from shared.plumbing.policy import Action, Principal, Resource, authorise
from shared.plumbing.tracing import span_id_for

VERDICT_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer turns into a response."""

    status: int
    body: dict[str, Any]
    problem: bool = False
    headers: dict[str, str] | None = None


def accepted_body(entry: LedgerEntry, status: str = "accepted") -> dict[str, Any]:
    return {
        "signal_id": entry.signal_id,
        "status": status,
        "subject_pseudonym": entry.subject_pseudonym,
        "accepted_at": entry.accepted_at.isoformat(),
    }


_STATUS = {
    RejectionReason.UNAUTHENTICATED: 401,
    RejectionReason.WRONG_PUBLISHER: 403,
    RejectionReason.FORBIDDEN: 403,
    RejectionReason.DUPLICATE: 409,
    RejectionReason.SUBJECT_ERASED: 409,
    RejectionReason.OVERSIZED: 413,
    RejectionReason.WRONG_CONTENT_TYPE: 415,
}


def problem(event: SignalRejected, extra: dict[str, Any] | None = None) -> Answer:
    status = _STATUS.get(event.reason, 422)
    body = {
        "type": f"https://safety-chain.nl/problems/{event.reason.value.replace('_', '-')}",
        "title": "Signal rejected",
        "status": status,
        "detail": f"{len(event.errors)} problem(s) with the submitted signal",
        "reason": event.reason.value,
        "signal_id": str(event.signal_id) if event.signal_id else None,
        "errors": [error.model_dump(mode="json") for error in event.errors],
        **(extra or {}),
    }
    return Answer(status, body, problem=True)


def with_signal_id(body: bytes, signal_id: str) -> bytes:
    """The body with the signal id this request was answered with, if it named none."""
    document = json.loads(body)
    if "signal_id" in document:
        return body
    return json.dumps({"signal_id": signal_id, **document}).encode()


class HttpSubmissions:
    def __init__(
        self,
        registry: Registry,
        pipeline: IntakePipeline,
        ledger: SignalLedger,
        gateway: KafkaGateway,
        board: OutcomeBoard,
        max_body_bytes: int,
        signing_key: Ed25519PrivateKey,
        intake_public_key: X25519PublicKey,
        verdict_timeout_seconds: float = VERDICT_TIMEOUT_SECONDS,
    ) -> None:
        self._signing_key = signing_key
        self._intake_public_key = intake_public_key
        self._registry = registry
        self._pipeline = pipeline
        self._ledger = ledger
        self._gateway = gateway
        self._board = board
        self.max_body_bytes = max_body_bytes
        self._verdict_timeout = verdict_timeout_seconds

    async def refuse(self, invalid: Invalid, correlation_id: str, first: LedgerEntry | None = None) -> Answer:
        """Dead-letter a request refused on its face, and say why. `first`: the earlier result
        of the caller's own signal id, shown to it again."""
        rejected = self._pipeline.rejection(
            invalid, "http", correlation_id, first.accepted_at if first else None
        )
        await self._gateway.publish(rejected)
        SIGNALS.labels("rejected", rejected.event.reason.value).inc()  # published (acks=all): it holds
        return problem(rejected.event, {"first_result": accepted_body(first)} if first else None)

    def _pending(self, signal_id: str, correlation_id: str) -> Answer:
        """No committed verdict in time. The intake record is stored and will be decided; the
        caller may ask again with the same signal id (a repeat answers the first result)."""
        return Answer(
            503,
            {
                "type": "https://safety-chain.nl/problems/verdict-pending",
                "title": "Verdict pending",
                "status": 503,
                "detail": "the signal is stored but not yet decided; retry with the same signal_id",
                "signal_id": signal_id,
                "correlation_id": correlation_id,
            },
            problem=True,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def submit(self, publisher: Principal, body: bytes, correlation_id: str) -> Answer:
        parsed = parse_submission(body, self._registry)
        if isinstance(parsed, Invalid):
            return await self.refuse(parsed, correlation_id)
        signal_id = str(parsed.signal_id)
        body = with_signal_id(body, signal_id)
        caller = publisher.organisation
        verdict = authorise(publisher, Action.SUBMIT_SIGNAL, Resource(municipality=parsed.municipality))
        if not verdict.allowed:
            return await self.refuse(
                Invalid.because(RejectionReason.WRONG_PUBLISHER, verdict.reason, "municipality"),
                correlation_id,
            )
        earlier = await asyncio.to_thread(self._ledger.find, signal_id)  # blocking I/O off the loop
        if earlier is not None:
            return await self._duplicate(signal_id, caller, correlation_id, earlier)
        # Into the one pipeline: sealed to this service, signed on behalf of the caller.
        value, headers = intake_record(
            body,
            self._registry.source(caller),
            self._signing_key,
            self._intake_public_key,
            correlation_id,
            extensions={"signalid": signal_id, "channel": "http"},
            parent_span_id=span_id_for(correlation_id),
        )
        provenance = await self._gateway.submit(signal_id, value, headers)
        # Posted only after the batch's transaction committed (kafka_intake.BatchOutcomes).
        outcome = await self._board.wait(provenance, self._verdict_timeout)
        if outcome is None:
            return self._pending(signal_id, correlation_id)
        if outcome.accepted is not None:
            entry = LedgerEntry(
                signal_id,
                provenance,
                outcome.accepted.subject_pseudonym,
                outcome.accepted.accepted_at,
                caller,
            )
            return Answer(202, {**accepted_body(entry), "correlation_id": correlation_id})
        assert outcome.rejected is not None
        duplicate = outcome.rejected.reason is RejectionReason.DUPLICATE
        first = await asyncio.to_thread(self._ledger.find, signal_id) if duplicate else None
        return problem(outcome.rejected, _first_result(first, caller))

    async def _duplicate(
        self, signal_id: str, caller: str, correlation_id: str, earlier: LedgerEntry
    ) -> Answer:
        invalid = Invalid.because(
            RejectionReason.DUPLICATE, "this signal id was accepted before", "signal_id"
        )
        invalid = Invalid(invalid.errors, signal_id, caller)
        return await self.refuse(
            invalid, correlation_id, first=earlier if earlier.municipality == caller else None
        )


def _first_result(first: LedgerEntry | None, caller: str) -> dict[str, Any] | None:
    """The earlier result of a duplicate, for the municipality that submitted it and nobody else."""
    if first is None or first.municipality != caller:
        return None
    return {"first_result": accepted_body(first)}
