"""Changing what consent decides on: agreement versions, suspensions, subject directives.

Every change is a record on a compacted topic, signed by the consent service, and is in force
once committed: the use cases return only after this instance's own state shows it, and every
instance's processor catches up before its next batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.consent.decision import Outcome, SignalFacts, decide
from services.consent.state import ConsentState
from shared.contracts.agreements import (
    Agreement,
    AgreementPublished,
    AgreementStatus,
    Directive,
    DirectiveKind,
    DirectiveScope,
    SubjectDirectives,
)
from shared.contracts.events import Event
from shared.crypto.signing import sign_record
from shared.envelope import Envelope
from shared.kafka import client_options
from shared.logging import get_logger
from shared.registry import OrganisationKind, Registry
from shared.settings import CommonSettings
from shared.topics import CONSENT_AGREEMENTS, CONSENT_DIRECTIVES, TopicSpec

SERVICE_ID = "consent"
log = get_logger()


class AgreementConflict(ValueError):
    """The change does not follow from the agreement's current version."""


def registry_problems(agreement: Agreement, registry: Registry) -> list[str]:
    """What the schema cannot know: are the parties registered, in the right role?"""
    problems = [
        f"provider {provider} is not a registered municipality"
        for provider in agreement.providers
        if not registry.is_kind(provider, OrganisationKind.MUNICIPALITY)
    ]
    problems += [
        f"recipient {recipient.partner} is not a registered chain partner"
        for recipient in agreement.recipients
        if not registry.is_kind(recipient.partner, OrganisationKind.PARTNER)
    ]
    return problems


class StatePublisher:
    """Writes consent's state topics (idempotent producer, acks=all), signed by consent."""

    def __init__(self, settings: CommonSettings, signing_key: Ed25519PrivateKey) -> None:
        self._settings = settings
        self._signing_key = signing_key
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **client_options(self._settings), enable_idempotence=True, acks="all"
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, topic: TopicSpec, key: str, event: Event, subject: str | None = None) -> None:
        assert self._producer is not None, "publisher not started"
        value = event.to_bytes()
        envelope = Envelope(source=SERVICE_ID, type=event.event_type, subject=subject)
        await self._producer.send_and_wait(
            topic.prefixed(self._settings.topic_prefix),
            value,
            key=key.encode(),
            headers=sign_record(self._signing_key, value, envelope.to_headers()),
        )


class AgreementAdmin:
    def __init__(self, state: ConsentState, publisher: StatePublisher, registry: Registry) -> None:
        self._state = state
        self._publisher = publisher
        self._registry = registry
        self._lock = asyncio.Lock()

    def current(self, agreement_id: str) -> Agreement | None:
        return self._state.agreements.get(agreement_id)

    async def _publish(self, agreement: Agreement, by: str) -> Agreement:
        event = AgreementPublished(agreement=agreement, published_by=by, published_at=datetime.now(UTC))
        await self._publisher.publish(CONSENT_AGREEMENTS, agreement.id, event)
        await self._state.agreements.catch_up()
        log.info(
            "agreement_published", agreement=agreement.id, version=agreement.version, status=agreement.status
        )
        return agreement

    async def seed(self, agreements: list[Agreement]) -> list[str]:
        """Publish the files' agreements that are newer than what the topic holds."""
        published = []
        async with self._lock:
            await self._state.agreements.catch_up()
            for agreement in agreements:
                current = self.current(agreement.id)
                if current is None or current.version < agreement.version:
                    await self._publish(agreement, "configuration")
                    published.append(agreement.id)
                elif current.version == agreement.version and current != agreement:
                    log.warning("agreement_file_differs", agreement=agreement.id, version=agreement.version)
        return published

    async def new_version(self, agreement: Agreement, by: str) -> Agreement:
        problems = registry_problems(agreement, self._registry)
        if problems:
            raise ValueError("; ".join(problems))
        async with self._lock:
            await self._state.agreements.catch_up()
            current = self.current(agreement.id)
            expected = current.version + 1 if current else 1
            if agreement.version != expected:
                raise AgreementConflict(
                    f"{agreement.id}: the next version is {expected}, not {agreement.version}"
                )
            return await self._publish(agreement, by)

    async def suspend(self, agreement_id: str, by: str) -> Agreement:
        async with self._lock:
            await self._state.agreements.catch_up()
            current = self.current(agreement_id)
            if current is None:
                raise KeyError(agreement_id)
            if current.status is AgreementStatus.SUSPENDED:
                return current
            suspended = current.model_copy(
                update={"version": current.version + 1, "status": AgreementStatus.SUSPENDED}
            )
            return await self._publish(suspended, by)


class DirectiveAdmin:
    def __init__(self, state: ConsentState, publisher: StatePublisher) -> None:
        self._state = state
        self._publisher = publisher
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def record(
        self, subject: str, kind: DirectiveKind, scope: DirectiveScope, by: str
    ) -> SubjectDirectives:
        """Add a directive to the subject's set; in force for the next signal decided."""
        # One writer per subject in this process; the topic keeps the whole set per subject.
        async with self._locks[subject]:
            await self._state.directives.catch_up()
            directive = Directive(kind=kind, scope=scope, recorded_at=datetime.now(UTC), recorded_by=by)
            event = SubjectDirectives(
                subject_pseudonym=subject, directives=(*self._state.directives_of(subject), directive)
            )
            await self._publisher.publish(CONSENT_DIRECTIVES, subject, event, subject=subject)
            await self._state.directives.catch_up()
        log.info("directive_recorded", subject=subject, kind=kind, by=by)
        return event


@dataclass(frozen=True)
class Explanation:
    recipient: str
    outcome: Outcome


class Explainer:
    """Why would (or wouldn't) a partner receive this signal? Decides, delivers nothing."""

    def __init__(self, state: ConsentState, registry: Registry) -> None:
        self._state = state
        self._registry = registry

    async def explain(
        self, facts: SignalFacts, subject: str | None, recipient: str | None, now: datetime | None = None
    ) -> list[Explanation]:
        await asyncio.gather(self._state.agreements.catch_up(), self._state.directives.catch_up())
        recipients = [recipient] if recipient else self._registry.partner_ids
        directives = self._state.directives_of(subject) if subject else ()
        moment = now or datetime.now(UTC)
        agreements = self._state.latest_agreements()  # suspended ones explain themselves
        return [Explanation(r, decide(facts, r, agreements, moment, directives)) for r in recipients]
