"""Changing what consent decides on: agreement versions, suspensions, subject directives.

Every change is a record on a compacted topic, signed by the consent service, and is in force
once committed: the use cases return only after this instance's own state shows it, and every
instance's processor catches up before its next batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from services.consent.changes import widenings
from services.consent.state import ConsentState
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    ProposalStatus,
)
from shared.kafka import SignedPublisher
from shared.logging import get_logger
from shared.policy import Principal
from shared.registry import OrganisationKind, Registry
from shared.topics import CONSENT_AGREEMENTS, CONSENT_PROPOSALS

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


@dataclass(frozen=True)
class ChangeOutcome:
    """A new version published at once (narrowing), or waiting for approval (widening)."""

    agreement: Agreement
    proposal: AgreementProposed | None = None

    @property
    def pending(self) -> bool:
        return self.proposal is not None and self.proposal.status is ProposalStatus.PENDING


class NoProposalError(LookupError):
    """No pending proposal of that version."""


class AgreementAdmin:
    def __init__(self, state: ConsentState, publisher: SignedPublisher, registry: Registry) -> None:
        self._state = state
        self._publisher = publisher
        self._registry = registry
        self._lock = asyncio.Lock()

    def current(self, agreement_id: str) -> Agreement | None:
        return self._state.agreements.get(agreement_id)

    def proposal(self, agreement_id: str) -> AgreementProposed | None:
        """The latest proposal for the agreement, if it is still pending and still applies."""
        proposal = self._state.proposals.get(agreement_id)
        if proposal is None or proposal.status is not ProposalStatus.PENDING:
            return None
        current = self.current(agreement_id)
        if current is not None and current.version >= proposal.agreement.version:
            return None  # superseded: another version came into force meanwhile
        return proposal

    async def refreshed(self) -> None:
        await asyncio.gather(self._state.agreements.catch_up(), self._state.proposals.catch_up())

    async def _publish(
        self,
        agreement: Agreement,
        by: str,
        proposed_by: str | None = None,
        approved_by: str | None = None,
        correlation_id: str | None = None,
    ) -> Agreement:
        event = AgreementPublished(
            agreement=agreement,
            published_by=by,
            published_at=datetime.now(UTC),
            proposed_by=proposed_by,
            approved_by=approved_by,
        )
        await self._publisher.publish(CONSENT_AGREEMENTS, agreement.id, event, correlation_id=correlation_id)
        await self._state.agreements.catch_up()
        log.info(
            "agreement_published", agreement=agreement.id, version=agreement.version, status=agreement.status
        )
        return agreement

    async def _record_proposal(
        self, proposal: AgreementProposed, correlation_id: str | None = None
    ) -> AgreementProposed:
        await self._publisher.publish(
            CONSENT_PROPOSALS, proposal.agreement.id, proposal, correlation_id=correlation_id
        )
        await self._state.proposals.catch_up()
        log.info(
            "agreement_proposal",
            agreement=proposal.agreement.id,
            version=proposal.agreement.version,
            status=proposal.status,
        )
        return proposal

    async def seed(self, agreements: list[Agreement]) -> list[str]:
        """Publish the files' agreements that are newer than what the topic holds. The files
        are the operator's reviewed configuration: no second approval here."""
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

    async def new_version(
        self, agreement: Agreement, by: Principal, correlation_id: str | None = None
    ) -> ChangeOutcome:
        """Publish a narrowing version at once; hold a widening one for approval."""
        problems = registry_problems(agreement, self._registry)
        if problems:
            raise ValueError("; ".join(problems))
        async with self._lock:
            await self.refreshed()
            current = self.current(agreement.id)
            expected = current.version + 1 if current else 1
            if agreement.version != expected:
                raise AgreementConflict(
                    f"{agreement.id}: the next version is {expected}, not {agreement.version}"
                )
            widens = widenings(current, agreement)
            if not widens:
                await self._publish(
                    agreement, by.organisation, proposed_by=by.actor, correlation_id=correlation_id
                )
                return ChangeOutcome(agreement)
            proposal = AgreementProposed(
                agreement=agreement,
                organisation=by.organisation,
                proposed_by=by.actor,
                proposed_at=datetime.now(UTC),
                widens=widens,
            )
            return ChangeOutcome(agreement, await self._record_proposal(proposal, correlation_id))

    async def decide(
        self,
        agreement_id: str,
        version: int,
        by: Principal,
        approve: bool,
        correlation_id: str | None = None,
    ) -> ChangeOutcome:
        """Approve (the version comes into force) or reject a pending proposal."""
        async with self._lock:
            await self.refreshed()
            proposal = self.proposal(agreement_id)
            if proposal is None or proposal.agreement.version != version:
                raise NoProposalError(f"no pending proposal of {agreement_id} v{version}")
            current = self.current(agreement_id)
            expected = current.version + 1 if current else 1
            if version != expected:
                raise AgreementConflict(f"{agreement_id}: the next version is {expected}, not {version}")
            if approve:
                # In force first, then the proposal marked: a crash in between leaves a proposal
                # that `proposal()` already sees as superseded, never an approval without effect.
                await self._publish(
                    proposal.agreement,
                    proposal.organisation,
                    proposal.proposed_by,
                    approved_by=by.actor,
                    correlation_id=correlation_id,
                )
            decided = proposal.model_copy(
                update={
                    "status": ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED,
                    "decided_by": by.actor,
                    "decided_at": datetime.now(UTC),
                }
            )
            return ChangeOutcome(proposal.agreement, await self._record_proposal(decided, correlation_id))

    async def suspend(self, agreement_id: str, by: Principal, correlation_id: str | None = None) -> Agreement:
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
            return await self._publish(
                suspended, by.organisation, proposed_by=by.actor, correlation_id=correlation_id
            )
